//! `guts-node`: parse the command line and hand over to the subcommand.

use std::process::ExitCode;

use clap::Parser as _;
use guts_node::cli::{self, Cli, Command, ConfigAction, UserAction};

/// mimalloc instead of glibc malloc: a miss of the repository cache decodes a state of
/// thousands of small allocations and an eviction frees them, from any worker thread;
/// glibc's arenas spent a quarter of the CPU of a read load in malloc, free and their
/// locks, and kept freed memory fragmented.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        None | Some(Command::Run) => cli::run(&cli),
        Some(Command::Keygen) => cli::keygen(),
        Some(Command::Config {
            action: ConfigAction::Check,
        }) => cli::config_check(&cli),
        Some(Command::User {
            action:
                UserAction::Create {
                    login,
                    admin,
                    password_stdin,
                },
        }) => cli::user_create(&cli, login, *admin, *password_stdin),
        Some(Command::Backup { dir }) => cli::backup(&cli, dir),
        Some(Command::Restore { backup, data_dir }) => {
            cli::restore(&cli, backup, data_dir.as_deref())
        }
    }
}

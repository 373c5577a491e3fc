//! `guts-node`: parse the command line and hand over to the subcommand.

use std::process::ExitCode;

use clap::Parser as _;
use guts_node::cli::{self, Cli, Command, ConfigAction, UserAction};

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

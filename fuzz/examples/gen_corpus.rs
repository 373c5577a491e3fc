//! Writes the seed corpora: real signed operations of every payload variant for
//! `op_decode`, a few text seeds for `key_parse` and `names`, and one valid frame of
//! every wire message for `p2p_wire` (its ops response carries `op_decode` seeds).
//!
//! Deterministic (fixed key, fixed timestamps), so running it again rewrites the same
//! files. Run from anywhere:
//!
//! ```text
//! cargo run --manifest-path fuzz/Cargo.toml --example gen_corpus
//! ```

use std::fs;
use std::path::{Path, PathBuf};

use guts_core::SignedOp;
use guts_core::{BranchProtection, Hlc, Keypair, ObjectId, OpId, Operation, Payload, RepoId, Role};
use guts_fuzz::author_key;
use guts_p2p::wire::{ErrorCode, Gossip, PackChunk, RepoDigest, RepoHeads, Request, Response};

fn main() -> std::io::Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus");
    write_dir(&root.join("op_decode"), &ops())?;
    write_dir(&root.join("key_parse"), &key_texts())?;
    write_dir(&root.join("names"), &name_texts())?;
    write_dir(&root.join("p2p_wire"), &wire_frames())?;
    Ok(())
}

/// Replaces the seed files of one target (regular files only; subdirectories and
/// anything else are left alone).
fn write_dir(dir: &Path, seeds: &[(String, Vec<u8>)]) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            fs::remove_file(entry.path())?;
        }
    }
    for (name, bytes) in seeds {
        fs::write(dir.join(name), bytes)?;
    }
    println!("{}: {} seeds", dir.display(), seeds.len());
    Ok(())
}

fn oid(byte: u8) -> ObjectId {
    ObjectId::from_bytes([byte; 20])
}

fn ops() -> Vec<(String, Vec<u8>)> {
    let key = author_key();
    let author = key.public();
    let other = Keypair::from_seed(&[0x11; 32]).public();
    let created_at = Hlc {
        wall_ms: 1_700_000_000_000,
        counter: 0,
    };
    let repo = RepoId::derive(&author, "octocat", "hello-world", created_at);
    let root = OpId::from_bytes([0x01; 32]);
    let two = vec![OpId::from_bytes([0x02; 32]), OpId::from_bytes([0x03; 32])];
    let many: Vec<OpId> = (0..8u8).map(|i| OpId::from_bytes([0x10 + i; 32])).collect();

    let cases: Vec<(&str, Vec<OpId>, Payload)> = vec![
        (
            "create_repo",
            vec![],
            Payload::CreateRepo {
                owner: "octocat".into(),
                name: "hello-world".into(),
                description: "My first repository".into(),
                private: false,
                default_branch: "main".into(),
            },
        ),
        (
            "create_repo_private_unicode",
            vec![],
            Payload::CreateRepo {
                owner: "a-b".into(),
                name: "ü.repo".into(),
                description: "Ünïcödé ✓ description\nsecond line".into(),
                private: true,
                default_branch: "trunk".into(),
            },
        ),
        (
            "update_repo_all",
            vec![root],
            Payload::UpdateRepo {
                description: Some("new description".into()),
                private: Some(true),
                default_branch: Some("develop".into()),
            },
        ),
        (
            "update_repo_none",
            vec![root],
            Payload::UpdateRepo {
                description: None,
                private: None,
                default_branch: None,
            },
        ),
        (
            "update_repo_mixed",
            two.clone(),
            Payload::UpdateRepo {
                description: None,
                private: Some(false),
                default_branch: None,
            },
        ),
        ("delete_repo", two.clone(), Payload::DeleteRepo),
        (
            "delete_repo_many_parents",
            many.clone(),
            Payload::DeleteRepo,
        ),
        (
            "set_role_write",
            vec![root],
            Payload::SetRole {
                user: other,
                role: Some(Role::Write),
            },
        ),
        (
            "set_role_owner",
            vec![root],
            Payload::SetRole {
                user: other,
                role: Some(Role::Owner),
            },
        ),
        (
            "set_role_remove",
            vec![root],
            Payload::SetRole {
                user: other,
                role: None,
            },
        ),
        (
            "set_org_access_read",
            vec![root],
            Payload::SetOrgAccess {
                user: other,
                role: Some(Role::Read),
            },
        ),
        (
            "set_org_access_leave",
            vec![root],
            Payload::SetOrgAccess {
                user: other,
                role: None,
            },
        ),
        (
            "set_branch_protection",
            vec![root],
            Payload::SetBranchProtection {
                branch: "refs/heads/main".into(),
                protection: Some(BranchProtection {
                    no_force_push: true,
                    no_deletion: true,
                    required_approvals: 2,
                    dismiss_stale_reviews: false,
                }),
            },
        ),
        (
            "set_branch_protection_stale",
            vec![root],
            Payload::SetBranchProtection {
                branch: "refs/heads/main".into(),
                protection: Some(BranchProtection {
                    no_force_push: true,
                    no_deletion: false,
                    required_approvals: 1,
                    dismiss_stale_reviews: true,
                }),
            },
        ),
        (
            "lift_branch_protection",
            two.clone(),
            Payload::SetBranchProtection {
                branch: "refs/heads/release/1.x".into(),
                protection: None,
            },
        ),
        (
            "update_ref_create",
            vec![root],
            Payload::UpdateRef {
                name: "refs/heads/main".into(),
                old: None,
                new: Some(oid(0xaa)),
                force: false,
            },
        ),
        (
            "update_ref_move",
            two.clone(),
            Payload::UpdateRef {
                name: "refs/heads/feature/x".into(),
                old: Some(oid(0xaa)),
                new: Some(oid(0xbb)),
                force: false,
            },
        ),
        (
            "update_ref_force",
            vec![root],
            Payload::UpdateRef {
                name: "refs/heads/main".into(),
                old: Some(oid(0xbb)),
                new: Some(oid(0xcc)),
                force: true,
            },
        ),
        (
            "update_ref_delete",
            many,
            Payload::UpdateRef {
                name: "refs/tags/v1.0.0".into(),
                old: Some(oid(0xcc)),
                new: None,
                force: false,
            },
        ),
    ];

    cases
        .into_iter()
        .enumerate()
        .map(|(i, (name, parents, payload))| {
            let op = Operation {
                repo,
                parents,
                author,
                timestamp: Hlc {
                    wall_ms: created_at.wall_ms + i as u64,
                    counter: i as u32,
                },
                payload,
            };
            let signed = match op.sign(&key) {
                Ok(signed) => signed,
                Err(err) => panic!("seed {name} does not sign: {err}"),
            };
            (format!("{i:02}-{name}"), signed.encode())
        })
        .collect()
}

fn key_texts() -> Vec<(String, Vec<u8>)> {
    let key = author_key();
    let public = key.public().to_string();
    let seeds = [
        ("seed_hex", key.seed_hex().to_string()),
        (
            "seed_hex_upper_padded",
            format!("  {}\n", key.seed_hex().to_uppercase()),
        ),
        ("public_key", public.clone()),
        ("op_id", OpId::from_bytes([0x3c; 32]).to_string()),
        ("object_id", ObjectId::from_bytes([0xde; 20]).to_string()),
        ("object_id_zero", ObjectId::ZERO.to_string()),
        ("bad_char", format!("{}g", &public[..63])),
        ("short", public[..40].to_uppercase()),
    ];
    seeds
        .into_iter()
        .map(|(name, text)| (name.to_string(), text.into_bytes()))
        .collect()
}

fn name_texts() -> Vec<(String, Vec<u8>)> {
    let seeds = [
        ("login", "octo-cat42"),
        ("repo_name", "my_repo.name-1"),
        ("repo_git_suffix", "repo.git"),
        ("ref_branch", "refs/heads/main"),
        ("ref_nested", "refs/heads/feature/x.y"),
        ("ref_tag", "refs/tags/v1.0.0"),
        ("ref_pull", "refs/pull/12/head"),
        ("ref_unicode_at", "refs/heads/ü-@b{c}"),
        ("ref_bad_at_brace", "refs/heads/a@{1}"),
        ("ref_bad_lock", "refs/heads/main.lock"),
        ("ref_bad_dotdot", "refs/heads/a..b/.c"),
    ];
    seeds
        .into_iter()
        .map(|(name, text)| (name.to_string(), text.as_bytes().to_vec()))
        .collect()
}

/// One frame of every message of the sync protocol, about the `op_decode` seeds'
/// repository.
fn wire_frames() -> Vec<(String, Vec<u8>)> {
    let ops: Vec<SignedOp> = ops()
        .into_iter()
        .map(|(name, bytes)| match SignedOp::decode(&bytes) {
            Ok(op) => op,
            Err(err) => panic!("seed {name} does not decode: {err}"),
        })
        .collect();
    let repo = ops
        .first()
        .map_or(RepoId::from_bytes([0; 32]), |op| op.op().repo);
    let other = RepoId::from_bytes([0xee; 32]);
    let heads: Vec<OpId> = ops.iter().rev().take(2).map(SignedOp::id).collect();
    let (low, high) = if repo < other {
        (repo, other)
    } else {
        (other, repo)
    };

    let frames: Vec<(&str, Result<Vec<u8>, _>)> = vec![
        (
            "announce",
            Gossip::Announce {
                repo,
                heads: heads.clone(),
                trace: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned()),
            }
            .encode(),
        ),
        (
            "accounts_changed",
            Gossip::Accounts { digest: [0x5a; 32] }.encode(),
        ),
        ("req_repos_first", Request::Repos { after: None }.encode()),
        (
            "req_repos_after",
            Request::Repos { after: Some(repo) }.encode(),
        ),
        (
            "req_heads",
            Request::Heads {
                repos: vec![repo, other],
            }
            .encode(),
        ),
        (
            "req_ops",
            Request::Ops {
                repo,
                want: heads.clone(),
                have: ops.iter().take(1).map(SignedOp::id).collect(),
                trace: None,
            }
            .encode(),
        ),
        (
            "req_pack",
            Request::Pack {
                repo,
                wants: vec![oid(0xaa)],
                haves: vec![oid(0xbb), oid(0xcc)],
                offset: 4096,
            }
            .encode(),
        ),
        (
            "req_accounts",
            Request::Accounts {
                digest: [0x33; 32],
                after: Some("u:alice".to_owned()),
            }
            .encode(),
        ),
        (
            "req_hello",
            Request::Hello { proof: [0x61; 32] }.encode(),
        ),
        (
            "resp_hello",
            Response::Hello { proof: [0x62; 32] }.encode(),
        ),
        (
            "resp_accounts",
            Response::Accounts {
                digest: [0x44; 32],
                sealed: vec![0x5a; 48],
                next: None,
            }
            .encode(),
        ),
        (
            "resp_repos",
            Response::Repos {
                repos: vec![
                    RepoDigest {
                        repo: low,
                        digest: [0x11; 32],
                    },
                    RepoDigest {
                        repo: high,
                        digest: [0x22; 32],
                    },
                ],
                next: Some(high),
            }
            .encode(),
        ),
        (
            "resp_heads",
            Response::Heads {
                repos: vec![RepoHeads::new(repo, heads.clone())],
            }
            .encode(),
        ),
        (
            "resp_ops",
            Response::Ops {
                repo,
                // Few: every execution verifies each signature, and a long list
                // slows the target down for no new coverage.
                ops: ops.iter().take(3).cloned().collect(),
                missing: vec![OpId::from_bytes([0x77; 32])],
            }
            .encode(),
        ),
        (
            "resp_pack_chunk_first",
            Response::PackChunk(PackChunk {
                repo,
                offset: 0,
                total: None,
                data: b"PACK\0\0\0\x02".to_vec(),
                last: false,
            })
            .encode(),
        ),
        (
            "resp_pack_chunk_last",
            Response::PackChunk(PackChunk {
                repo,
                offset: 8,
                total: Some(12),
                data: vec![1, 2, 3, 4],
                last: true,
            })
            .encode(),
        ),
        (
            "resp_error",
            Response::Error {
                code: ErrorCode::NotFound,
                message: "repository not seeded".into(),
            }
            .encode(),
        ),
    ];
    frames
        .into_iter()
        .enumerate()
        .map(|(i, (name, frame))| match frame {
            Ok(bytes) => (format!("{i:02}-{name}"), bytes),
            Err(err) => panic!("seed {name} does not encode: {err}"),
        })
        .collect()
}

//! `bert-finetune train --nproc N`: a thin launcher for one machine, what `torchrun
//! --nproc-per-node N --no-python` does: N copies of this command (without `--nproc`), each
//! with the variables torchrun sets (`RANK`, `LOCAL_RANK`, `WORLD_SIZE`, `MASTER_ADDR`,
//! `MASTER_PORT`, and `OMP_NUM_THREADS=1` unless set); rank 0 hosts the store. When a rank fails, the others are stopped and the
//! failure names it; no process is left behind.

use std::process::{Child, Command};
use std::time::Duration;

use anyhow::{bail, Context, Result};

/// The command line without `--nproc N` / `--nproc=N`.
fn without_nproc(args: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut skip = false;
    for a in args {
        if skip {
            skip = false;
        } else if a == "--nproc" {
            skip = true;
        } else if !a.starts_with("--nproc=") {
            out.push(a.clone());
        }
    }
    out
}

/// Starts `n` ranks of this command on this machine and waits for all of them.
pub fn run(n: usize) -> Result<()> {
    if n == 0 {
        bail!("--nproc 0: start at least 1 process");
    }
    let exe = std::env::current_exe().context("cannot find this program to start its ranks")?;
    let args = without_nproc(&std::env::args().skip(1).collect::<Vec<_>>());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .context("no free port for the ranks' rendezvous")?
        .port();
    // One intra-op thread per rank unless told otherwise, as torchrun sets it, so N ranks do
    // not oversubscribe the cores (and both launchers compute alike).
    let threads = std::env::var("OMP_NUM_THREADS").unwrap_or_else(|_| "1".to_string());
    let mut ranks: Vec<Child> = Vec::with_capacity(n);
    for rank in 0..n {
        let child = Command::new(&exe)
            .args(&args)
            .env("OMP_NUM_THREADS", &threads)
            .env("RANK", rank.to_string())
            .env("LOCAL_RANK", rank.to_string())
            .env("WORLD_SIZE", n.to_string())
            .env("LOCAL_WORLD_SIZE", n.to_string())
            .env("MASTER_ADDR", "127.0.0.1")
            .env("MASTER_PORT", port.to_string())
            .spawn()
            .with_context(|| format!("cannot start rank {rank}"))?;
        ranks.push(child);
    }
    let mut done = vec![false; n];
    loop {
        for (rank, child) in ranks.iter_mut().enumerate() {
            if done[rank] {
                continue;
            }
            if let Some(status) = child.try_wait()? {
                done[rank] = true;
                if !status.success() {
                    for other in ranks.iter_mut() {
                        let _ = other.kill();
                        let _ = other.wait();
                    }
                    bail!("rank {rank} of {n} failed ({status}); the other ranks were stopped");
                }
            }
        }
        if done.iter().all(|&d| d) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_ranks_run_the_command_without_nproc() {
        let args: Vec<String> = [
            "train",
            "--nproc",
            "2",
            "--epochs",
            "1",
            "--nproc=3",
            "--out",
            "x",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            super::without_nproc(&args),
            ["train", "--epochs", "1", "--out", "x"]
        );
    }
}

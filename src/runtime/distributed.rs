//! Data-parallel processes on PyTorch's own distributed engine (c10d): the rendezvous
//! torchrun's environment describes ([`Rendezvous`]: `RANK`, `WORLD_SIZE`, `LOCAL_RANK`,
//! `MASTER_ADDR`, `MASTER_PORT`, and `TORCHELASTIC_USE_AGENT_STORE` when torchrun's agent
//! hosts the store), and the [`ProcessGroup`] over it, as
//! `torch.distributed.init_process_group("gloo", init_method="env://")` builds it: a
//! TCPStore (hosted by rank 0 unless the agent hosts it) and a Gloo group.
//!
//! Every collective waits for its result. A peer that dies ends the others' collective with
//! an error naming the operation and gloo's reason; one that stalls, after the timeout
//! (`BERT_FINETUNE_DIST_TIMEOUT` seconds, 1800 by default as in torch), never a hang.
//!
//! Gloo runs on the CPU; NCCL carries CUDA tensors (each process on `cuda:LOCAL_RANK`), built
//! from the wheel's `ProcessGroupNCCL.hpp` (`csrc/nccl.cpp`); it has not run on a GPU yet.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use tch::Tensor;

use super::ffi;

/// Where the ranks meet and which one this process is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendezvous {
    pub master_addr: String,
    pub master_port: u16,
    pub rank: usize,
    pub world_size: usize,
    /// This process's rank on its machine (its GPU, when there are GPUs).
    pub local_rank: usize,
    /// The store is already hosted (torchrun's agent): every rank connects as a client.
    pub store_hosted: bool,
}

impl Rendezvous {
    /// The rendezvous of torchrun's environment; `None` when `WORLD_SIZE` is unset or 1 (a
    /// single process), unless `BERT_FINETUNE_DIST=1` asks for a group even then (a one-rank
    /// group exercises the data-parallel path, NCCL included, on a machine with one GPU). A
    /// variable that is set but wrong is an error naming it.
    pub fn from_env() -> Result<Option<Rendezvous>> {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    /// [`Rendezvous::from_env`] over any source of variables (tests).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<Rendezvous>> {
        let number = |k: &str| -> Result<Option<usize>> {
            var(k)
                .map(|v| {
                    v.trim()
                        .parse::<usize>()
                        .map_err(|_| anyhow!("{k}={v:?} is not a whole number"))
                })
                .transpose()
        };
        let world_size = number("WORLD_SIZE")?.unwrap_or(1);
        let forced = match var("BERT_FINETUNE_DIST").as_deref().map(str::trim) {
            None | Some("" | "0") => false,
            Some("1") => true,
            Some(other) => {
                bail!("BERT_FINETUNE_DIST={other:?}: use 1 (a group even for one process) or 0")
            }
        };
        if world_size == 0 {
            bail!("WORLD_SIZE=0: a run has at least one process");
        }
        if world_size == 1 && !forced {
            return Ok(None);
        }
        let rank = match number("RANK")? {
            Some(rank) => rank,
            None if world_size == 1 => 0,
            None => bail!("WORLD_SIZE is set but RANK is not"),
        };
        if rank >= world_size {
            bail!("RANK={rank} is not below WORLD_SIZE={world_size}");
        }
        let master_addr = var("MASTER_ADDR").unwrap_or_else(|| "127.0.0.1".to_string());
        let port = number("MASTER_PORT")?.unwrap_or(29500);
        let master_port = u16::try_from(port)
            .ok()
            .filter(|&p| p > 0)
            .ok_or_else(|| anyhow!("MASTER_PORT={port} is not a TCP port"))?;
        Ok(Some(Rendezvous {
            master_addr,
            master_port,
            rank,
            world_size,
            local_rank: number("LOCAL_RANK")?.unwrap_or(rank),
            store_hosted: var("TORCHELASTIC_USE_AGENT_STORE").as_deref() == Some("True"),
        }))
    }

    fn is_loopback(&self) -> bool {
        matches!(self.master_addr.as_str(), "127.0.0.1" | "localhost" | "::1")
    }
}

/// How long a collective may wait for its peers: `BERT_FINETUNE_DIST_TIMEOUT` seconds, else
/// 30 minutes (torch's default for Gloo).
pub fn timeout_from_env() -> Result<Duration> {
    match std::env::var("BERT_FINETUNE_DIST_TIMEOUT") {
        Err(_) => Ok(Duration::from_secs(1800)),
        Ok(v) => v
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| {
                anyhow!("BERT_FINETUNE_DIST_TIMEOUT={v:?} is not a number of seconds > 0")
            }),
    }
}

/// `timeout` in whole milliseconds, as the shim takes it.
fn millis(timeout: Duration) -> i64 {
    timeout.as_millis().min(i64::MAX as u128) as i64
}

/// This process's place in a group of ranks, and the collectives between them.
pub struct ProcessGroup {
    group: ffi::Group,
    pub rendezvous: Rendezvous,
    /// Collectives issued so far (the Trainer's all-reduce count per step is checked with it).
    collectives: AtomicUsize,
}

impl ProcessGroup {
    /// Meets the other ranks at the rendezvous and builds the Gloo group; fails after
    /// `timeout` when they do not all come.
    pub fn gloo(rendezvous: &Rendezvous, timeout: Duration) -> Result<ProcessGroup> {
        let group = ffi::gloo_group(
            &rendezvous.master_addr,
            rendezvous.master_port,
            rendezvous.rank,
            rendezvous.world_size,
            rendezvous.store_hosted,
            rendezvous.is_loopback(),
            millis(timeout),
        );
        Self::joined(rendezvous, "group", group)
    }

    /// Meets the other ranks and builds the NCCL group, this process on `cuda:LOCAL_RANK`.
    pub fn nccl(rendezvous: &Rendezvous, timeout: Duration) -> Result<ProcessGroup> {
        let group = ffi::nccl_group(
            &rendezvous.master_addr,
            rendezvous.master_port,
            rendezvous.rank,
            rendezvous.world_size,
            rendezvous.store_hosted,
            millis(timeout),
            rendezvous.local_rank,
        );
        let what = format!("NCCL group (cuda:{})", rendezvous.local_rank);
        Self::joined(rendezvous, &what, group)
    }

    /// The group a backend built at `rendezvous`, or its failure said with the rank and the
    /// address.
    fn joined(
        rendezvous: &Rendezvous,
        what: &str,
        group: Result<ffi::Group>,
    ) -> Result<ProcessGroup> {
        let group = group.with_context(|| {
            format!(
                "rank {} of {} could not join the {what} at {}:{}",
                rendezvous.rank,
                rendezvous.world_size,
                rendezvous.master_addr,
                rendezvous.master_port
            )
        })?;
        Ok(ProcessGroup {
            group,
            rendezvous: rendezvous.clone(),
            collectives: AtomicUsize::new(0),
        })
    }

    /// Whether this build carries the NCCL group (it does wherever the CUDA wheel's
    /// libtorch and headers were found at build time, GPU or not).
    pub fn nccl_available() -> bool {
        ffi::nccl_available()
    }

    /// The group torchrun's environment describes, Gloo on the CPU (`None` for a single
    /// process).
    pub fn from_env() -> Result<Option<ProcessGroup>> {
        Self::from_env_for(tch::Device::Cpu)
    }

    /// The group for a model on `device`: NCCL for CUDA (each process on
    /// `cuda:LOCAL_RANK`), Gloo for the CPU; `None` for a single process.
    pub fn from_env_for(device: tch::Device) -> Result<Option<ProcessGroup>> {
        let Some(r) = Rendezvous::from_env()? else {
            return Ok(None);
        };
        let timeout = timeout_from_env()?;
        Ok(Some(match device {
            tch::Device::Cuda(_) => Self::nccl(&r, timeout)?,
            _ => Self::gloo(&r, timeout)?,
        }))
    }

    pub fn rank(&self) -> usize {
        self.rendezvous.rank
    }

    pub fn world_size(&self) -> usize {
        self.rendezvous.world_size
    }

    /// Rank 0 writes checkpoints, logs and the final model.
    pub fn is_main(&self) -> bool {
        self.rank() == 0
    }

    fn counted<T>(&self, what: &str, result: Result<T>) -> Result<T> {
        self.collectives.fetch_add(1, Ordering::Relaxed);
        result.with_context(|| {
            format!(
                "{what} on rank {} of {}: a peer has stopped or is unreachable",
                self.rank(),
                self.world_size()
            )
        })
    }

    /// Sums every tensor over the ranks, in place, in one collective.
    pub fn all_reduce_sum(&self, tensors: &[Tensor]) -> Result<()> {
        self.counted("all_reduce", self.group.allreduce_sum(tensors))
    }

    /// Rank `root`'s values in every rank's `tensor`.
    pub fn broadcast(&self, tensor: &Tensor, root: usize) -> Result<()> {
        self.counted("broadcast", self.group.broadcast(tensor, root))
    }

    /// Every rank's `tensor` (the same shape on each), stacked in rank order.
    pub fn all_gather(&self, tensor: &Tensor) -> Result<Tensor> {
        self.counted("all_gather", self.group.allgather(tensor))
    }

    pub fn barrier(&self) -> Result<()> {
        self.counted("barrier", self.group.barrier())
    }

    /// Collectives issued so far by this process.
    pub fn collectives(&self) -> usize {
        self.collectives.load(Ordering::Relaxed)
    }
}

//! Which device to train on, reported the way the tutorial's first cell does.
//!
//! tch can count GPUs but cannot name them, so names come from `nvidia-smi` when it exists; a
//! missing tool only loses the names, never the report.

use std::fmt;

use tch::{Cuda, Device};

use crate::runtime::display::{Html, Rich};
use crate::runtime::nvidia_smi::gpu_names;
use crate::runtime::precision::Precision;
use crate::runtime::settings;

pub use crate::runtime::cuda::{cuda_load_error, ensure_cuda_backend};

/// Bytes of memory the system can give this process now: `MemAvailable` in
/// `/proc/meminfo`, or less when a container's cgroup limit leaves less; `None` where
/// neither is known.
pub fn available_memory() -> Option<u64> {
    let system = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
            let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            kb.checked_mul(1024)
        });
    let read = |name: &str| -> Option<u64> {
        std::fs::read_to_string(format!("/sys/fs/cgroup/{name}"))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    // cgroup v2; `memory.max` is "max" (no number) when unlimited.
    let container =
        read("memory.max").map(|max| max.saturating_sub(read("memory.current").unwrap_or(0)));
    match (system, container) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// `tch::manual_seed` after loading the CUDA backend, so seeding first cannot leave a GPU
/// machine on the CPU.
pub fn manual_seed(seed: u64) {
    ensure_cuda_backend();
    tch::manual_seed(seed as i64);
}

/// What the machine offers and what we chose, printable in a terminal and in a notebook.
#[derive(Debug, Clone)]
pub struct DeviceReport {
    /// Number of CUDA devices libtorch can use.
    pub gpu_count: usize,
    /// Marketing names from `nvidia-smi`, one per GPU when available.
    pub gpu_names: Vec<String>,
    /// The device training will run on: the first GPU, else the CPU.
    pub device: Device,
    /// Why the CUDA backend failed to load, when its library exists.
    pub cuda_error: Option<String>,
    /// Who kept the run on the CPU although a GPU exists (`--cpu`, `BERT_FINETUNE_DEVICE=cpu`),
    /// so the report names the choice instead of implying the GPU is used.
    pub cpu_chosen_by: Option<String>,
    /// The precision training will use on `device`: [`Precision::default_for`] unless
    /// [`DeviceReport::with_precision`] names another.
    pub precision: Precision,
    /// Why that precision: the default's reason, or who chose it (`--precision`).
    pub precision_reason: String,
}

/// Inspects the machine and picks the first GPU when there is one, unless
/// [`settings::cpu_requested`] keeps the run on the CPU.
pub fn detect() -> DeviceReport {
    ensure_cuda_backend();
    let gpu_count = if Cuda::is_available() {
        Cuda::device_count().max(0) as usize
    } else {
        0
    };
    let gpu_names = if gpu_count > 0 {
        gpu_names()
    } else {
        Vec::new()
    };
    let device = if gpu_count > 0 {
        Device::Cuda(0)
    } else {
        Device::Cpu
    };
    let report = DeviceReport {
        gpu_count,
        gpu_names,
        device,
        cuda_error: cuda_load_error().map(String::from),
        cpu_chosen_by: None,
        precision: Precision::default(),
        precision_reason: String::new(),
    };
    match settings::cpu_requested() {
        Some(setting) => report.choose_cpu(setting),
        None => report.with_default_precision(),
    }
}

/// The device to use, honouring `BERT_FINETUNE_DEVICE=cpu` for runs that must stay on the CPU
/// (without touching CUDA at all then).
pub fn choose() -> Device {
    match settings::cpu_requested() {
        Some(_) => Device::Cpu,
        None => detect().device,
    }
}

impl DeviceReport {
    /// The same report for a device chosen elsewhere, such as [`choose`]'s.
    pub fn using(mut self, device: Device) -> Self {
        self.device = device;
        self.with_default_precision()
    }

    /// The same report with the CPU chosen on purpose; `by` names who chose it (`--cpu`), and
    /// the report says so when a GPU was there to use.
    pub fn choose_cpu(mut self, by: impl Into<String>) -> Self {
        self.device = Device::Cpu;
        self.cpu_chosen_by = Some(by.into());
        self.with_default_precision()
    }

    /// The same report with a precision chosen on purpose; `by` names who chose it
    /// (`--precision`), in place of the default's reason.
    pub fn with_precision(mut self, precision: Precision, by: impl Into<String>) -> Self {
        self.precision = precision;
        self.precision_reason = format!("chosen by {}", by.into());
        self
    }

    /// The default precision for the chosen device, with its reason
    /// ([`Precision::default_for`]), so the notebook's device cell says what training will use.
    fn with_default_precision(mut self) -> Self {
        self.precision = Precision::default_for(self.device);
        self.precision_reason = Precision::reason_for(self.device);
        self
    }

    /// True when training will run on a GPU.
    pub fn is_gpu(&self) -> bool {
        self.device != Device::Cpu
    }

    fn gpu_name(&self, index: usize) -> &str {
        self.gpu_names
            .get(index)
            .map(String::as_str)
            .unwrap_or("(name unavailable: nvidia-smi not found)")
    }
}

impl fmt::Display for DeviceReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(error) = &self.cuda_error {
            writeln!(f, "Warning: the CUDA backend did not load: {error}")?;
        }
        if self.is_gpu() {
            let index = match self.device {
                Device::Cuda(i) => i,
                _ => 0,
            };
            writeln!(f, "There are {} GPU(s) available.", self.gpu_count)?;
            write!(f, "We will use the GPU: {}", self.gpu_name(index))?;
        } else if self.gpu_count > 0 {
            writeln!(f, "There are {} GPU(s) available.", self.gpu_count)?;
            match &self.cpu_chosen_by {
                Some(by) => write!(f, "A GPU is available, but the CPU was chosen ({by})."),
                None => write!(f, "A GPU is available, but the CPU was chosen."),
            }?;
        } else {
            write!(f, "No GPU available, using the CPU instead.")?;
        }
        write!(
            f,
            "\nTraining precision: {} ({}).",
            self.precision, self.precision_reason
        )
    }
}

impl Rich for DeviceReport {
    fn html(&self) -> Option<Html> {
        let mut html = String::from("<div><b>Device</b>: ");
        html.push_str(&crate::runtime::display::escape(&format!(
            "{:?}",
            self.device
        )));
        html.push_str("<br>");
        for line in self.to_string().lines() {
            html.push_str(&crate::runtime::display::escape(line));
            html.push_str("<br>");
        }
        html.push_str("</div>");
        Some(Html(html))
    }
}

crate::impl_evcxr_display!(DeviceReport);

#[cfg(test)]
mod tests {
    use super::*;

    fn report(gpu_count: usize, device: Device) -> DeviceReport {
        DeviceReport {
            gpu_count,
            gpu_names: vec!["Test GPU".into(); gpu_count],
            device,
            cuda_error: None,
            cpu_chosen_by: None,
            precision: Precision::Tf32,
            precision_reason: "a test".into(),
        }
    }

    #[test]
    fn a_gpu_in_use_is_named() {
        let text = report(1, Device::Cuda(0)).to_string();
        assert!(text.contains("We will use the GPU: Test GPU"), "{text}");
    }

    #[test]
    fn no_gpu_keeps_the_tutorials_sentence() {
        let text = report(0, Device::Cpu).using(Device::Cpu).to_string();
        assert_eq!(
            text,
            "No GPU available, using the CPU instead.\nTraining precision: fp32 (the CPU: \
             bf16 and fp16 matmuls are not faster on most CPUs)."
        );
    }

    #[test]
    fn a_cpu_chosen_over_a_gpu_says_who_chose_it() {
        for by in ["--cpu", "BERT_FINETUNE_DEVICE=cpu"] {
            let text = report(2, Device::Cuda(0)).choose_cpu(by).to_string();
            assert!(
                text.contains(&format!(
                    "A GPU is available, but the CPU was chosen ({by})."
                )),
                "{text}"
            );
            assert!(!text.contains("We will use the GPU"), "{text}");
        }
        let text = report(1, Device::Cuda(0)).using(Device::Cpu).to_string();
        assert!(text.contains("but the CPU was chosen."), "{text}");
    }

    #[test]
    fn cpu_chosen_on_a_machine_without_gpu_reads_as_no_gpu() {
        let text = report(0, Device::Cpu).choose_cpu("--cpu").to_string();
        assert!(
            text.starts_with("No GPU available, using the CPU instead.\n"),
            "{text}"
        );
    }

    #[test]
    fn the_precision_and_who_chose_it_are_named() {
        let text = report(1, Device::Cuda(0))
            .with_precision(Precision::Fp16, "--precision")
            .to_string();
        assert!(
            text.ends_with("Training precision: fp16 (chosen by --precision)."),
            "{text}"
        );
    }
}

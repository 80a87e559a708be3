//! The built CLI runs on its own: no `LD_LIBRARY_PATH`, libtorch found through the rpath.

use std::process::Command;

#[test]
fn binary_runs_without_ld_library_path_and_reports_the_device() {
    let out = Command::new(env!("CARGO_BIN_EXE_bert-finetune"))
        .arg("info")
        .env_remove("LD_LIBRARY_PATH")
        // `info` honours BERT_FINETUNE_DEVICE=cpu now, which would hide the GPU line.
        .env_remove("BERT_FINETUNE_DEVICE")
        .output()
        .expect("the binary starts");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("8,551"), "{stdout}");
    let has_gpu = std::path::Path::new("/dev/nvidia0").exists();
    if has_gpu {
        assert!(stdout.contains("We will use the GPU:"), "{stdout}");
    } else {
        assert!(
            stdout.contains("No GPU available, using the CPU instead."),
            "{stdout}"
        );
        assert!(
            stdout.contains("Training precision: fp32 (the CPU"),
            "the default precision and why: {stdout}"
        );
    }
}

#[test]
fn bad_data_folder_is_a_clear_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_bert-finetune"))
        .args(["info", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("in_domain_train.tsv") && !stderr.contains("panicked"),
        "{stderr}"
    );
}

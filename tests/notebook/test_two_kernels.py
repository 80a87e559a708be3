"""Two notebooks run at the same moment, as a reader with two JupyterLab tabs may: every kernel
of the project builds its cells in the one shared cache (.evcxr/tmp), and each must still run
its own cells. Before the kernel took a lock around a cell's build (kernel/evcxr/evcxr.patch,
lock_crate_dir), this run showed one kernel answering with the other's value."""
import os
import sys
import threading

from jupyter_client.manager import start_new_kernel

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import kernel_cells  # noqa: E402

DEP = ':dep bert_finetune = { path = "../kernel/dylib", package = "bert-finetune-dylib" }'
CELLS = 12


def main():
    kernels = [start_new_kernel(kernel_name="bert-finetune", startup_timeout=120,
                                cwd=os.path.join(ROOT, "notebooks")) for _ in range(2)]
    wrong = []
    try:
        for _, client in kernels:
            for source in (DEP, "use bert_finetune::prelude::*;"):
                _, error, _ = kernel_cells.execute(client, source, timeout=900)
                if error:
                    raise SystemExit(f"{source}: {error}")

        def drive(which, client):
            for k in range(CELLS):
                want = 1000 * (which + 1) + k
                text, error, _ = kernel_cells.execute(
                    client, f"let v{k}: i64 = {want};\nv{k} + 0", timeout=900)
                if error or text.strip() != str(want):
                    wrong.append(f"kernel {which + 1}, cell {k}: wanted {want}, got "
                                 f"{text.strip()[:40]!r} {(error or '')[:120]}")

        threads = [threading.Thread(target=drive, args=(i, client))
                   for i, (_, client) in enumerate(kernels)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for manager, client in kernels:
            client.stop_channels()
            manager.shutdown_kernel(now=True)
    for line in wrong:
        print("FAIL " + line)
    if wrong:
        sys.exit(f"{len(wrong)} of {2 * CELLS} cells run in two kernels at once answered wrongly")
    print(f"ok   two kernels at once: all {2 * CELLS} cells answered with their own values")


if __name__ == "__main__":
    main()

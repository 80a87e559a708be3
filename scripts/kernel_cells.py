"""Runs code on a started Jupyter kernel and collects what it answered: shared by the set-up's
cache warm-up and the background-run test."""


def execute(client, code, timeout=3600):
    """Executes `code`; returns (printed text, error text or None, stderr text).

    The printed text holds stdout and the plain-text form of displayed values; stderr (where
    evcxr relays cargo's build log) is kept apart so callers show it only when it matters."""
    msg_id = client.execute(code)
    text, stderr, error = [], [], None
    while True:
        msg = client.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream":
            (stderr if content.get("name") == "stderr" else text).append(content["text"])
        elif kind in ("execute_result", "display_data"):
            text.append(content["data"].get("text/plain", ""))
        elif kind == "error":
            error = "\n".join(content.get("traceback", [])) or content.get("evalue", "error")
        elif kind == "status" and content["execution_state"] == "idle":
            return "".join(text), error, "".join(stderr)

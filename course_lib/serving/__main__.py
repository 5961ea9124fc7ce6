"""``python -m course_lib.serving``: run the service with uvicorn on 127.0.0.1 (Ctrl-C stops it cleanly).

Example::

    python -m course_lib.serving --port 8000                       # every model, batching on
    python -m course_lib.serving --models embeddings --max-batch-size 1   # MiniLM only, no batching
"""
from __future__ import annotations

import argparse
import sys

from .app import MODELS, ServingConfig, create_app


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    d = ServingConfig()
    p = argparse.ArgumentParser(prog="python -m course_lib.serving", description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (keep loopback on a shared machine)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS), help="models to load")
    p.add_argument("--max-batch-size", type=int, default=d.max_batch_size, help="1 switches batching off")
    p.add_argument("--batch-window-ms", type=float, default=d.batch_window_ms)
    p.add_argument("--max-queue", type=int, default=d.max_queue, help="pending requests per endpoint before 503")
    p.add_argument("--max-body-bytes", type=int, default=d.max_body_bytes)
    p.add_argument("--max-prompt-tokens", type=int, default=d.max_prompt_tokens)
    p.add_argument("--classifier-train-size", type=int, default=d.classifier_train_size)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        import uvicorn
    except ImportError:
        print("the service needs uvicorn: pip install fastapi==0.165.0 uvicorn==0.54.0 httpx==0.28.1", file=sys.stderr)
        return 2
    if args.threads is not None:
        import torch
        torch.set_num_threads(args.threads)
    cfg = ServingConfig(models=tuple(args.models), max_batch_size=args.max_batch_size,
                        batch_window_ms=args.batch_window_ms, max_queue=args.max_queue,
                        max_body_bytes=args.max_body_bytes, max_prompt_tokens=args.max_prompt_tokens,
                        classifier_train_size=args.classifier_train_size)
    app = create_app(cfg)
    print(f"serving {', '.join(cfg.models)} on http://{args.host}:{args.port} (docs at /docs)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", timeout_graceful_shutdown=5)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

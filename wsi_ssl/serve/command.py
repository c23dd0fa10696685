"""``wsi-ssl serve`` (run the embeddings API) and ``wsi-ssl serve-keys`` (manage study keys).

Heavy imports (FastAPI, torch, uvicorn) happen inside the handlers so ``wsi-ssl --help`` stays fast.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from wsi_ssl.config import ConfigError, load_config, parse_overrides

log = logging.getLogger("wsi_ssl.serve")
LOOPBACK = ("127.0.0.1", "::1", "localhost")


def _load(args: argparse.Namespace) -> Any:
    from wsi_ssl.serve.config import ServeConfig

    flags = {"host": getattr(args, "host", None), "port": getattr(args, "port", None)}
    return load_config(ServeConfig, args.config, parse_overrides(args.set), flags)


def _serve(args: argparse.Namespace) -> int:
    if args.write_openapi:
        from wsi_ssl.serve.app import write_openapi

        print(f"wrote {write_openapi(args.write_openapi)}")
        return 0
    cfg = _load(args)
    import uvicorn

    from wsi_ssl.serve.app import build_state, create_app
    from wsi_ssl.serve.models import ModelLoadError
    from wsi_ssl.stores.encoder_dir import EncoderError

    try:
        state = build_state(cfg)
    except (ModelLoadError, EncoderError) as exc:
        raise ConfigError(str(exc)) from None
    if state.keys.error is not None:
        raise ConfigError(str(state.keys.error))
    for problem in state.catalog.check_folders():
        log.warning("%s (it will be served as empty until it appears)", problem)
    if not state.keys.path.exists():
        log.warning(
            "keys file %s does not exist: every request will get 401; add a key with `wsi-ssl serve-keys add`",
            cfg.keys_file,
        )
    if cfg.host not in LOOPBACK:
        log.warning("listening on %s, beyond this machine: put TLS in front (API keys travel in a header)", cfg.host)
    app = create_app(cfg, state)
    log.info(
        "serving %d cohort(s), encoder %s, %d model(s) on http://%s:%d%s",
        len(cfg.cohorts),
        state.encoder.name if state.encoder else "none",
        len(state.models),
        cfg.host,
        cfg.port,
        "/v1/docs",
    )
    uvicorn.run(app, host=cfg.host, port=cfg.port, log_level="warning", access_log=False)
    return 0


def _keys_file(args: argparse.Namespace) -> Path:
    if args.keys_file:
        return Path(args.keys_file)
    if args.config:
        return Path(_load(args).keys_file)
    raise ConfigError("give --keys-file PATH or --config (whose keys_file is used)")


def _keys(args: argparse.Namespace) -> int:
    from wsi_ssl.serve.keys import KeyFileError, add_key, read_keys, revoke_key

    path = _keys_file(args)
    try:
        if args.action == "add":
            if not args.id or not args.cohort:
                raise ConfigError("serve-keys add needs --id and at least one --cohort (or --cohort '*')")
            key = add_key(path, args.id, args.cohort, note=args.note or "")
            print(f"key {args.id!r} for cohorts {', '.join(args.cohort)} added to {path}.")
            print("Give this key to the study; it is not stored and cannot be shown again:")
            print(key)
        elif args.action == "revoke":
            if not args.id:
                raise ConfigError("serve-keys revoke needs --id")
            revoke_key(path, args.id)
            print(f"key {args.id!r} revoked in {path}")
        else:
            for k in read_keys(path):
                print(f"{k.key_id}\tcohorts={','.join(k.cohorts)}\tcreated={k.created}\t{k.note}")
    except KeyFileError as exc:
        print(f"wsi-ssl serve-keys: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("serve", help="serve embeddings of feature caches to downstream studies (HTTP API)")
    p.add_argument("--config", help="serve config YAML (e.g. configs/serve/default.yaml)")
    p.add_argument("--host", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, help="port to bind")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key (repeatable)")
    p.add_argument("--write-openapi", metavar="PATH", help="write the OpenAPI document to PATH and exit")
    p.set_defaults(func=_serve)

    k = subparsers.add_parser("serve-keys", help="add, list or revoke the API keys of `wsi-ssl serve`")
    k.add_argument("action", choices=("add", "list", "revoke"))
    k.add_argument("--keys-file", help="the keys file (default: keys_file of --config)")
    k.add_argument("--config", help="serve config YAML whose keys_file to use")
    k.add_argument("--set", action="append", metavar="KEY=VALUE", help=argparse.SUPPRESS)
    k.add_argument("--id", help="key id, e.g. the study's name (shown in the access log)")
    k.add_argument("--cohort", action="append", help="a cohort the key may see (repeatable; '*' for all)")
    k.add_argument("--note", help="free text stored with the key")
    k.set_defaults(func=_keys)

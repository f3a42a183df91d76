"""`tf.distribute` strategies for training on several devices or machines.

The package does no distribution of its own: `FlowModel` trains under any
`tf.distribute` strategy (build the distribution inside `strategy.scope()`),
and this module picks the strategy by name, checks the batch, and makes a
multi-worker start-up fail with a clear message instead of hanging.
"""

from __future__ import annotations

import json
import os
import socket
import time

import tensorflow as tf

__all__ = ["STRATEGIES", "check_global_batch", "make_strategy"]

STRATEGIES = ("default", "mirrored", "multiworker")


def _addresses() -> tuple[str, list[str]]:
    """This worker's address and the other workers', from `TF_CONFIG`."""
    try:
        config = json.loads(os.environ["TF_CONFIG"])
        cluster, task = config["cluster"], config["task"]
        own = cluster[task["type"]][task["index"]]
    except (KeyError, IndexError, TypeError, ValueError) as error:
        raise ValueError("The multiworker strategy needs TF_CONFIG, e.g. "
                         '{"cluster": {"worker": ["host1:port", "host2:port"]}, '
                         '"task": {"type": "worker", "index": 0}}; got '
                         f"{os.environ.get('TF_CONFIG')!r} ({error!r}).") from error
    return own, [address for addresses in cluster.values() for address in addresses
                 if address != own]


def _rendezvous(own: str, peers: list[str], timeout: float) -> None:
    """Waits until every peer accepts TCP connections; `TimeoutError` names those that don't.

    `MultiWorkerMirroredStrategy()` blocks, holding the interpreter, until all
    workers have joined, with no deadline. So first each worker listens on its
    own address (what the peers probe) and probes the peers', then frees its
    port for the strategy's server; a peer still probing then reaches that
    server instead.
    """
    host, port = own.rsplit(":", 1)
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, int(port)))
    except OSError as error:
        raise ValueError(f"This worker cannot listen on its TF_CONFIG address {own}: {error}. "
                         "Is the port free, and the address one of this machine's?") from error
    listener.listen(len(peers) + 4)
    deadline = time.monotonic() + timeout
    try:
        missing = list(peers)
        while missing:
            missing = [address for address in missing if not _reachable(address)]
            if missing and time.monotonic() > deadline:
                raise TimeoutError(
                    f"This worker ({own}) could not reach its peer(s) at {', '.join(missing)} "
                    f"within {timeout:.0f} s. Start every worker listed in TF_CONFIG, with the "
                    "same cluster.")
            time.sleep(0.2)
        # Linger so that peers still probing see this worker before its port closes.
        time.sleep(1.0)
    finally:
        listener.close()


def _reachable(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=1.0).close()
        return True
    except OSError:
        return False


def make_strategy(name: str = "default", peer_timeout: float = 60.0) -> tf.distribute.Strategy:
    """The strategy `name`: `"default"` (one device), `"mirrored"` (all local GPUs, or
    all logical CPUs), `"multiworker"` (the cluster in `TF_CONFIG`).

    For `"multiworker"`, call this first thing in the program (before other
    TensorFlow work); it waits up to `peer_timeout` seconds for every peer's
    server and raises `TimeoutError` naming the peer that did not answer.

    Raises:
      ValueError: on an unknown name or a missing / malformed `TF_CONFIG`.
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in gpus or tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    if name == "multiworker":
        _rendezvous(*_addresses(), peer_timeout)
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"`strategy` must be one of {', '.join(STRATEGIES)}; got {name!r}.")


def check_global_batch(batch_size: int, strategy: tf.distribute.Strategy) -> None:
    """Raises `ValueError` unless the global batch splits evenly across the replicas."""
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas:
        raise ValueError(f"The global batch size {batch_size} must be divisible by the "
                         f"{replicas} replicas of the {type(strategy).__name__}: each replica "
                         f"takes batch_size / {replicas} points. Try "
                         f"{batch_size - batch_size % replicas or replicas}.")

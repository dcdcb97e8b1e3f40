"""framestream's side of the prediction benchmark, run as a subprocess like the peer.

argv[1]: JSON spec {"nets", "batches", "steps" (per batch size), "rows", "warmup"}. Per
network: the executor's inference forward at each batch size; ``FeedForward.predict`` over
``rows`` rows through an NDArrayIter of batch 100; ``extract_features`` at the flatten
layer likewise. Prints one JSON line of milliseconds (per batch, or per whole pass)."""

from __future__ import annotations

import json
import sys

from _fs_nets import FLATTEN, bind, params, symbol
from _util import fixed_batch, time_steps, warm_pass_ms

from framestream import mx
from framestream.nn.features import extract_features


def measure(name: str, spec: dict) -> dict[str, float]:
    out = {}
    for b in spec["batches"]:
        ex = bind(name, b, train=False)
        x = fixed_batch(b)[0]
        step = lambda ex=ex, x=x: ex.forward(is_train=False, data=x)  # noqa: E731
        out[f"forward_{b}"] = 1e3 * time_steps(step, spec["steps"][str(b)], spec["warmup"])
    args, aux = params(ex)
    model = mx.model.FeedForward(symbol(name), arg_params=args, aux_params=aux, numpy_batch_size=100)
    rows = fixed_batch(spec["rows"], seed=1)[0]
    out["predict"] = warm_pass_ms(lambda: model.predict(mx.io.NDArrayIter(rows, batch_size=100)))
    if name in FLATTEN:
        layer = FLATTEN[name]
        out["features"] = warm_pass_ms(lambda: extract_features(model, mx.io.NDArrayIter(rows, batch_size=100),
                                                                top_layer=layer))
    return out


def main(spec: dict) -> None:
    print(json.dumps({"ms": {n: measure(n, spec) for n in spec["nets"]}}))


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))

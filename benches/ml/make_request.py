"""Writes a one-row KServe v2 infer request for MODEL, built from the
server's own metadata: JSON data (--json) or the binary tensor extension.

usage: make_request.py URL MODEL OUT_FILE [--json]
Prints the JSON header length (for Inference-Header-Content-Length; 0 for --json).
Dims: the batch dim is 1, other dynamic dims 128; INT64 inputs are all 1
(valid token ids / masks / segment ids); float inputs are a fixed pattern.
Outputs are requested binary unless --json.
"""
import json
import struct
import sys
import urllib.request

url, model, out = sys.argv[1], sys.argv[2], sys.argv[3]
as_json = "--json" in sys.argv[4:]
meta = json.load(urllib.request.urlopen(f"{url}/v2/models/{model}"))
inputs, blobs = [], []
for inp in meta["inputs"]:
    dims = [1 if i == 0 and d == -1 else (128 if d == -1 else d) for i, d in enumerate(inp["shape"])]
    n = 1
    for d in dims:
        n *= d
    dt = inp["datatype"]
    if dt == "INT64":
        vals, fmt = [1] * n, "<%dq" % n
    elif dt == "FP32":
        vals, fmt = [((i % 17) - 8) / 8.0 for i in range(n)], "<%df" % n
    else:
        sys.exit(f"make_request.py: datatype {dt} not handled")
    entry = {"name": inp["name"], "datatype": dt, "shape": dims}
    if as_json:
        entry["data"] = vals
    else:
        blob = struct.pack(fmt, *vals)
        entry["parameters"] = {"binary_data_size": len(blob)}
        blobs.append(blob)
    inputs.append(entry)
req = {"inputs": inputs}
if not as_json:
    req["parameters"] = {"binary_data_output": True}
head = json.dumps(req, separators=(",", ":")).encode()
with open(out, "wb") as f:
    f.write(head)
    for b in blobs:
        f.write(b)
print(0 if as_json else len(head))

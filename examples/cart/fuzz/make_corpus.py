#!/usr/bin/env python3
"""Writes the HTTP fuzzer's seed corpus (examples/cart/fuzz/corpus/).

Each file is what a client sends to cart-server: one request (a few files
hold two, pipelined), byte for byte as curl and the web page send them, for
every endpoint of docs/cart-api.md, with good and bad input (TESTPLAN S5).

    examples/cart/fuzz/make_corpus.py [<out dir>]

Files named crash-* or regression-* are kept; every other file is replaced.
The state pushed to /internal/merge is a real encoding, from the codec
fuzzer's corpus (crdt/codec/fuzz-corpus/cart-all-deltas-1.bin).
"""

import base64
import json
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
SOURCE = HERE.parents[2]
HOST = "127.0.0.1:8081"


def request(method, target, body=None, headers=(), version="1.1", content_type=True):
    lines = [f"{method} {target} HTTP/{version}", f"Host: {HOST}",
             "User-Agent: curl/7.88.1", "Accept: */*"]
    lines += list(headers)
    data = b""
    if body is not None:
        data = body if isinstance(body, bytes) else body.encode()
        if content_type:
            lines.append("Content-Type: application/json")
        lines.append(f"Content-Length: {len(data)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


def obj(**fields):
    return json.dumps(fields, separators=(",", ":"))


def cases():
    state = (SOURCE / "crdt/codec/fuzz-corpus/cart-all-deltas-1.bin").read_bytes()[1:]
    state64 = base64.b64encode(state).decode()
    c = {}
    # --- carts
    c["get-cart"] = request("GET", "/carts/alice")
    c["add-item"] = request("POST", "/carts/alice/items", obj(sku="apple", quantity=2))
    c["add-item-majority-idempotent"] = request(
        "POST", "/carts/alice/items?w=majority", obj(sku="pear", quantity=1),
        ["Idempotency-Key: 7f3c2a10-5e4b-4c1d-9a8f-0b6e2d4c1a77"])
    c["add-item-unicode-sku"] = request(
        "POST", "/carts/bob/items", '{"sku":"caf\\u00e9-\u20ac-\U0001F34E","quantity":1}')
    c["set-item"] = request("PUT", "/carts/alice/items/apple", obj(quantity=5))
    c["set-item-zero"] = request("PUT", "/carts/alice/items/apple?w=all", obj(quantity=0))
    c["set-item-percent-sku"] = request("PUT", "/carts/alice/items/caf%C3%A9%20noir",
                                        obj(quantity=3))
    c["remove-item"] = request("DELETE", "/carts/alice/items/apple")
    c["clear-cart"] = request("DELETE", "/carts/alice?w=local",
                              headers=["Idempotency-Key: clear-1"])
    # --- carts, bad input
    for name, q in [("zero", "0"), ("negative", "-1"), ("2e63", "9223372036854775808"),
                    ("1e400", "1e400"), ("nan", "NaN"), ("string", '"2"'), ("float", "2.0"),
                    ("exponent", "1e3"), ("null", "null"), ("over-limit", "1000001")]:
        c[f"bad-quantity-{name}"] = request("POST", "/carts/alice/items",
                                            '{"sku":"apple","quantity":' + q + "}")
    c["bad-sku-control"] = request("POST", "/carts/alice/items", '{"sku":"a\\u0007","quantity":1}')
    c["bad-sku-surrogate"] = request("POST", "/carts/alice/items",
                                     '{"sku":"\\ud800","quantity":1}')
    c["bad-sku-nonchar"] = request("POST", "/carts/alice/items", '{"sku":"\\ufdd0","quantity":1}')
    c["bad-sku-too-long"] = request("POST", "/carts/alice/items",
                                    obj(sku="x" * 129, quantity=1))
    c["bad-sku-path-overlong"] = request("PUT", "/carts/alice/items/%C0%AF", obj(quantity=1))
    c["bad-sku-path-surrogate"] = request("PUT", "/carts/alice/items/%ED%A0%80", obj(quantity=1))
    c["bad-sku-path-fffe"] = request("DELETE", "/carts/alice/items/%EF%BF%BE")
    c["bad-sku-path-invalid-utf8"] = request("DELETE", "/carts/alice/items/%FF%FE")
    c["bad-json-duplicate"] = request("POST", "/carts/alice/items",
                                      '{"sku":"apple","quantity":1,"quantity":2}')
    c["bad-json-unknown-field"] = request("POST", "/carts/alice/items",
                                          '{"sku":"apple","quantity":1,"colour":"red"}')
    c["bad-json-deep"] = request("POST", "/carts/alice/items",
                                 '{"sku":' + "[" * 9 + "1" + "]" * 9 + ',"quantity":1}')
    c["bad-json-truncated"] = request("POST", "/carts/alice/items", '{"sku":"apple","quan')
    c["bad-json-array"] = request("PUT", "/carts/alice/items/apple", "[5]")
    c["bad-cart-id"] = request("GET", "/carts/al%20ice")
    c["bad-cart-id-long"] = request("GET", "/carts/" + "a" * 129)
    c["bad-percent"] = request("GET", "/carts/%zz/items")
    c["bad-w"] = request("POST", "/carts/alice/items?w=quorum", obj(sku="apple", quantity=1))
    c["bad-idempotency-key"] = request("DELETE", "/carts/alice",
                                       headers=["Idempotency-Key: " + "k" * 256])
    c["bad-method"] = request("PATCH", "/carts/alice/items/apple", obj(quantity=1))
    # --- HTTP framing
    c["chunked-body"] = (
        b"POST /carts/alice/items HTTP/1.1\r\nHost: " + HOST.encode() +
        b"\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"10\r\n{\"sku\":\"apple\",\"\r\n" + b"e\r\nquantity\":2}\r\n\r\n0\r\n\r\n")
    c["expect-continue"] = request("POST", "/carts/alice/items", obj(sku="fig", quantity=1),
                                   ["Expect: 100-continue"])
    c["body-too-large"] = (b"POST /carts/alice/items HTTP/1.1\r\nHost: " + HOST.encode() +
                           b"\r\nContent-Length: 100000\r\n\r\n{\"sku\":")
    c["header-too-large"] = request("GET", "/carts/alice", headers=["X-Padding: " + "p" * 9000])
    c["malformed-request-line"] = b"GET /carts/alice HTTP/9.9 extra\r\n\r\n"
    c["pipelined"] = (request("POST", "/carts/alice/items", obj(sku="kiwi", quantity=1)) +
                      request("GET", "/carts/alice"))
    c["http10-close"] = request("GET", "/healthz", version="1.0")
    # --- operations
    c["healthz"] = request("GET", "/healthz")
    c["metrics"] = request("GET", "/metrics")
    c["cluster"] = request("GET", "/cluster", headers=["Origin: http://127.0.0.1:8082"])
    c["page"] = request("GET", "/")
    c["page-app-js"] = request("GET", "/app.js")
    c["preflight"] = request("OPTIONS", "/carts/alice/items",
                             headers=["Origin: http://127.0.0.1:8082",
                                      "Access-Control-Request-Method: POST",
                                      "Access-Control-Request-Headers: content-type,idempotency-key"])
    c["healthz-post"] = request("POST", "/healthz", "")
    c["not-found"] = request("GET", "/nope/../carts")
    # --- fault injection
    c["admin-partition"] = request("POST", "/admin/partition", obj(peers=["n2", "n3"]))
    c["admin-heal"] = request("DELETE", "/admin/partition")
    c["admin-partition-bad"] = request("POST", "/admin/partition", obj(peers=["", "n 2"]))
    c["admin-corrupt"] = request("POST", "/admin/corrupt",
                                 obj(key="cart:alice", sku="apple", quantity=99))
    # --- internal
    c["internal-keys"] = request("GET", "/internal/keys?prefix=cart:&after=cart:alice&limit=100")
    c["internal-keys-bad-limit"] = request("GET", "/internal/keys?prefix=cart%3A&limit=0x10")
    c["internal-state"] = request("GET", "/internal/state?key=cart%3Aalice")
    c["internal-state-missing-key"] = request("GET", "/internal/state?prefix=cart:")
    c["internal-merge"] = request("POST", "/internal/merge", obj(key="cart:alice", state=state64))
    c["internal-merge-bad-base64"] = request("POST", "/internal/merge",
                                             obj(key="cart:alice", state="QR=="))
    return c


def main():
    out = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "corpus"
    out.mkdir(parents=True, exist_ok=True)
    for old in out.iterdir():
        if not old.name.startswith(("crash-", "regression-")):
            old.unlink()
    files = cases()
    for name, data in files.items():
        (out / name).write_bytes(data)
    print(f"wrote {len(files)} files to {out}")


if __name__ == "__main__":
    main()

"""Keys and tokens for the identity tests, made with PyJWT and cryptography:
a library independent of the server's verifier (ring).

    python3 jwt_mint.py keys  < [{"alg": "RS256", "kid": "k1"}, ...]
    python3 jwt_mint.py mint  < [{"key": {...from keys...}, "claims": {...},
                                  "mode": "normal" | "none" | "hs256_pubkey",
                                  "kid": "override" (optional, null drops it)}]

Prints a JSON list: for `keys`, {kid, alg, jwk, private_pem, public_pem}; for
`mint`, the tokens. `none` and `hs256_pubkey` are the attacker's tokens,
built by hand (PyJWT refuses to make the second one, rightly).
"""
import base64
import hashlib
import hmac
import json
import sys

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def keys(specs):
    out = []
    for spec in specs:
        alg = spec["alg"]
        if alg == "RS256":
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
        elif alg == "ES256":
            key = ec.generate_private_key(ec.SECP256R1())
            jwk = json.loads(ECAlgorithm.to_jwk(key.public_key()))
        elif alg == "EdDSA":
            key = ed25519.Ed25519PrivateKey.generate()
            jwk = json.loads(OKPAlgorithm.to_jwk(key.public_key()))
        else:
            raise SystemExit("unknown alg " + alg)
        jwk.update({"kid": spec["kid"], "alg": alg, "use": "sig"})
        out.append({
            "kid": spec["kid"],
            "alg": alg,
            "jwk": jwk,
            "private_pem": key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).decode(),
            "public_pem": key.public_key().public_bytes(
                serialization.Encoding.PEM,
                serialization.PublicFormat.SubjectPublicKeyInfo,
            ).decode(),
        })
    return out


def mint(specs):
    out = []
    loaded = {}  # PEM → key object: parsing an RSA key is the slow part
    for spec in specs:
        key = spec["key"]
        claims = spec["claims"]
        mode = spec.get("mode", "normal")
        kid = spec["kid"] if "kid" in spec else key["kid"]
        headers = {"kid": kid} if kid is not None else {}
        if mode == "normal":
            pem = key["private_pem"]
            if pem not in loaded:
                loaded[pem] = serialization.load_pem_private_key(pem.encode(), password=None)
            out.append(jwt.encode(claims, loaded[pem], algorithm=key["alg"], headers=headers))
            continue
        header = dict(headers, typ="JWT", alg="none" if mode == "none" else "HS256")
        signing_input = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
        if mode == "none":
            out.append(signing_input + ".")
        elif mode == "hs256_pubkey":
            mac = hmac.new(key["public_pem"].encode(), signing_input.encode(), hashlib.sha256)
            out.append(signing_input + "." + b64(mac.digest()))
        else:
            raise SystemExit("unknown mode " + mode)
    return out


if __name__ == "__main__":
    request = json.load(sys.stdin)
    print(json.dumps({"keys": keys, "mint": mint}[sys.argv[1]](request)))

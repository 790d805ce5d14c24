"""The JWT audience under real gunicorn (deploy/gunicorn.conf.py): a spoofed `X-Forwarded-Proto: https`
from 127.0.0.1 does not make the service believe it was called over https (gunicorn trusts 127.0.0.1 by
default; the config trusts nobody unless CDS_FORWARDED_ALLOW_IPS names the proxy), and a token minted for
another host is refused when sent with that `Host`."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec

from bench.gunicorn import GunicornServer
from tests.auth.support import SigningKey, jwk_set

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ISSUER = "https://ehr.gunicorn-aud.example"
KEY = SigningKey("gunicorn-aud", "ES384", ec.generate_private_key(ec.SECP384R1()))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GunicornServer]:
    tmp = tmp_path_factory.mktemp("gunicorn-aud")
    trust = tmp / "trust.json"
    trust.write_text(json.dumps({"issuers": [{"iss": ISSUER, "jwks": jwk_set(KEY)}]}))
    with GunicornServer(f"sqlite:///{tmp}/feedback.sqlite3", workers=1, threads=2, log_path=tmp / "gunicorn.log",
                        extra_env={"CDS_AUTH": "required", "CDS_TRUSTED_ISSUERS": str(trust)}) as running:
        yield running


def discovery(server: GunicornServer, aud: str, **headers: str) -> int:
    now = int(time.time())
    token = jwt.encode({"iss": ISSUER, "aud": aud, "iat": now, "exp": now + 300, "jti": str(uuid.uuid4())},
                       KEY.private, algorithm="ES384", headers={"kid": KEY.kid})
    response = requests.get(server.url + "/cds-services", timeout=10,
                            headers={"Authorization": f"Bearer {token}", **headers})
    return response.status_code


def test_spoofed_forwarded_proto_is_not_believed(server: GunicornServer) -> None:
    https_url = server.url.replace("http://", "https://") + "/cds-services"
    assert discovery(server, https_url, **{"X-Forwarded-Proto": "https"}) == 401
    assert discovery(server, https_url, **{"X-Forwarded-Ssl": "on", "X-Forwarded-Protocol": "ssl"}) == 401
    assert discovery(server, server.url + "/cds-services", **{"X-Forwarded-Proto": "https"}) == 200


def test_token_for_another_host_with_that_host_is_refused(server: GunicornServer) -> None:
    assert discovery(server, "http://other-cds.example/cds-services", Host="other-cds.example") == 401
    assert discovery(server, server.url + "/cds-services") == 200  # the URL really called

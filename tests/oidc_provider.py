"""A small OpenID Connect provider on loopback, for the single sign-on tests.

It speaks the authorization-code flow as a team's identity provider does: discovery, a sign-in
form of its own, PKCE (S256), a token endpoint that checks the client's secret, the redirect URI
and the code verifier, RS256-signed ID tokens with a published key set, and userinfo. Codes work
once and for a minute. Nothing errorsink-specific: errorsink reaches it only by URL.
"""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import orjson
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

CODE_SECONDS = 60


@dataclass
class Person:
    username: str
    password: str
    email: str
    email_verified: bool = True

    @property
    def sub(self) -> str:
        return f"idp-{self.username}"


@dataclass
class Grant:
    person: Person
    redirect_uri: str
    nonce: str | None
    challenge: str | None
    made: float = field(default_factory=time.monotonic)


class OidcProvider:
    def __init__(self, *, client_id: str, secret: str, people: list[Person]) -> None:
        self.client_id, self.secret = client_id, secret
        self.people = {person.username: person for person in people}
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.codes: dict[str, Grant] = {}
        self.tokens: dict[str, Person] = {}
        self.refused: list[str] = []  # why each refused request was refused
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def stop(self) -> None:
        self.server.shutdown()

    # --- the endpoints ---------------------------------------------------------------------

    def configuration(self) -> dict:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "userinfo_endpoint": f"{self.issuer}/userinfo",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": ["openid", "email", "profile"],
        }

    def jwks(self) -> dict:
        jwk = orjson.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**jwk, "kid": "test", "use": "sig", "alg": "RS256"}]}

    def sign_in_form(self, query: dict, error: str = "") -> str:
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in query.items()
        )
        return (
            "<!doctype html><title>Loopback IdP</title><h1>Loopback IdP: sign in</h1>"
            f'<p class="error">{html.escape(error)}</p><form method="post" action="/authorize">'
            f'{hidden}<label>User <input name="login"></label>'
            '<label>Password <input name="secret" type="password"></label>'
            '<button type="submit">Sign in to the IdP</button></form>'
        )

    def authorize(self, form: dict) -> tuple[int, dict, bytes]:
        if form.get("client_id") != self.client_id:
            return self._refuse(400, "unknown client")
        person = self.people.get(form.get("login", ""))
        if person is None or person.password != form.get("secret"):
            query = {k: v for k, v in form.items() if k not in ("login", "secret")}
            return 200, {"Content-Type": "text/html"}, self.sign_in_form(query, "Wrong").encode()
        code = secrets.token_urlsafe(24)
        self.codes[code] = Grant(person, form["redirect_uri"], form.get("nonce"),
                                 form.get("code_challenge"))  # fmt: skip
        target = f"{form['redirect_uri']}?{urlencode({'code': code, 'state': form['state']})}"
        return 302, {"Location": target}, b""

    def token(self, form: dict, authorization: str | None) -> tuple[int, dict, bytes]:
        client_id, secret = form.get("client_id"), form.get("client_secret")
        if authorization and authorization.startswith("Basic "):
            decoded = base64.b64decode(authorization[6:]).decode()
            client_id, _, secret = decoded.partition(":")
        if (client_id, secret) != (self.client_id, self.secret):
            return self._refuse(401, "bad client credentials")
        grant = self.codes.pop(form.get("code", ""), None)
        if grant is None or time.monotonic() - grant.made > CODE_SECONDS:
            return self._refuse(400, "unknown or spent code")
        if form.get("redirect_uri") != grant.redirect_uri:
            return self._refuse(400, "redirect_uri differs")
        if grant.challenge and _s256(form.get("code_verifier", "")) != grant.challenge:
            return self._refuse(400, "PKCE verifier does not match")
        access = secrets.token_urlsafe(24)
        self.tokens[access] = grant.person
        body = {"access_token": access, "token_type": "Bearer", "expires_in": 300,
                "id_token": self._id_token(grant)}  # fmt: skip
        return 200, {"Content-Type": "application/json"}, orjson.dumps(body)

    def userinfo(self, authorization: str | None) -> tuple[int, dict, bytes]:
        person = self.tokens.get((authorization or "").removeprefix("Bearer "))
        if person is None:
            return self._refuse(401, "unknown access token")
        return 200, {"Content-Type": "application/json"}, orjson.dumps(_claims(person))

    def _id_token(self, grant: Grant) -> str:
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": self.client_id, "iat": now, "exp": now + 300,
                  **_claims(grant.person)}  # fmt: skip
        if grant.nonce:
            claims["nonce"] = grant.nonce
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": "test"})

    def _refuse(self, status: int, why: str) -> tuple[int, dict, bytes]:
        self.refused.append(why)
        return status, {"Content-Type": "application/json"}, orjson.dumps({"error": why})

    def _handler(self):
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                url = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path == "/.well-known/openid-configuration":
                    self._json(provider.configuration())
                elif url.path == "/jwks":
                    self._json(provider.jwks())
                elif url.path == "/authorize":
                    self._send(200, {"Content-Type": "text/html"},
                               provider.sign_in_form(query).encode())  # fmt: skip
                elif url.path == "/userinfo":
                    self._send(*provider.userinfo(self.headers.get("Authorization")))
                else:
                    self._send(404, {}, b"")

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                if self.path == "/authorize":
                    self._send(*provider.authorize(form))
                elif self.path == "/token":
                    self._send(*provider.token(form, self.headers.get("Authorization")))
                else:
                    self._send(404, {}, b"")

            def _json(self, body: dict) -> None:
                self._send(200, {"Content-Type": "application/json"}, orjson.dumps(body))

            def _send(self, status: int, headers: dict, body: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        return Handler


def _claims(person: Person) -> dict:
    return {"sub": person.sub, "email": person.email, "email_verified": person.email_verified,
            "preferred_username": person.username, "name": person.username.title()}  # fmt: skip


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

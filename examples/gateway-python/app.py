#!/usr/bin/env python3
"""A tiny app behind the Tenantry gateway (nginx auth_request or Caddy
forward_auth), in Python: standard library HTTP server + psycopg.

It has no tenant code. The gateway resolves the tenant and sends it in
X-Tenant-Id (a client's own header of that name never gets through); the app
puts it in `app.tenant_id` for the transaction, and row-level security,
installed by `tenantry app-db isolate --table leads`, does the rest.

    GET  /leads            the leads the tenant may see
    POST /leads {"name"}   a new lead (organization_id defaults to the tenant)

Environment: APP_DATABASE_URL (the app's ordinary request role), PORT.
crates/tenantry/tests/gateway_python.rs runs it behind real nginx.
"""
import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg

DATABASE_URL = os.environ["APP_DATABASE_URL"]


def tenant_transaction(conn, tenant):
    """The one line: the tenant for this transaction only (`true`)."""
    conn.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant,))


class App(BaseHTTPRequestHandler):
    def _reply(self, status, body, content_type="application/json"):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _tenant(self):
        # Set by the gateway; absent, the database shows nothing.
        return self.headers.get("X-Tenant-Id", "")

    def do_GET(self):
        if self.path != "/leads":
            return self._reply(404, {"error": "not found"})
        with psycopg.connect(DATABASE_URL) as conn, conn.transaction():
            tenant_transaction(conn, self._tenant())
            rows = conn.execute("SELECT organization_id, name FROM leads ORDER BY id").fetchall()
        self._reply(200, {
            "x_tenant_id": self.headers.get_all("X-Tenant-Id") or [],
            "x_tenant_plan": self.headers.get_all("X-Tenant-Plan") or [],
            "leads": [{"organization_id": o, "name": n} for o, n in rows],
        })

    def do_POST(self):
        if self.path != "/leads":
            return self._reply(404, {"error": "not found"})
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
            name = str(body["name"])
        except (ValueError, KeyError, TypeError):
            return self._reply(422, {"error": "a JSON body with a name"})
        try:
            with psycopg.connect(DATABASE_URL) as conn, conn.transaction():
                tenant_transaction(conn, self._tenant())
                if "organization_id" in body:
                    # A client naming another tenant's id: the policy's
                    # WITH CHECK refuses the row.
                    row = conn.execute(
                        "INSERT INTO leads (organization_id, name) VALUES (%s, %s) RETURNING organization_id",
                        (str(body["organization_id"]), name),
                    ).fetchone()
                else:
                    row = conn.execute(
                        "INSERT INTO leads (name) VALUES (%s) RETURNING organization_id", (name,)
                    ).fetchone()
        except psycopg.errors.InsufficientPrivilege:
            return self._reply(403, {"error": "row-level security refused the row"})
        except psycopg.errors.NotNullViolation:
            return self._reply(403, {"error": "no tenant for this request"})
        self._reply(201, {"organization_id": row[0], "name": name})

    def log_message(self, fmt, *args):
        pass


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ.get("PORT", "8080"))), App)
    print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()

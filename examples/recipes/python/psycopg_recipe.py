"""Python (psycopg 3): every request's queries in one transaction with the
tenant from the gateway's X-Tenant-Id header; row-level security does the
filtering. Run by crates/tenantry/tests/app_db.rs:
    python3 psycopg_recipe.py DATABASE_URL TENANT
prints what the tenant sees and whether a row for another tenant is refused.
"""
import json
import sys

import psycopg


def main(url, tenant):
    out = {}
    with psycopg.connect(url) as conn:
        with conn.transaction():
            conn.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant,))  # the one line
            out["seen"] = [r[0] for r in conn.execute("SELECT name FROM leads ORDER BY name")]
        try:
            with conn.transaction():
                conn.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant,))
                conn.execute("INSERT INTO leads (tenant_id, name) VALUES ('someone-else', 'x')")
            out["foreign_insert"] = "accepted"
        except psycopg.errors.InsufficientPrivilege:
            out["foreign_insert"] = "refused"
        # Outside a tenant transaction: nothing.
        with conn.transaction():
            out["without_tenant"] = [r[0] for r in conn.execute("SELECT name FROM leads")]
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

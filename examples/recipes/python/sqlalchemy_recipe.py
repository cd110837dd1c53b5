"""Python (SQLAlchemy 2): the tenant goes into a context variable per request
(from the gateway's X-Tenant-Id header); an `after_begin` hook puts it in
`app.tenant_id` at the start of every transaction a Session opens, so no
query anywhere needs a tenant filter. Run by crates/tenantry/tests/app_db.rs:
    python3 sqlalchemy_recipe.py DATABASE_URL TENANT
"""
import contextvars
import json
import sys

from sqlalchemy import create_engine, event, text
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.orm import Session

current_tenant = contextvars.ContextVar("current_tenant", default="")


@event.listens_for(Session, "after_begin")
def set_tenant(session, transaction, connection):
    connection.execute(  # the one line
        text("SELECT set_config('app.tenant_id', :t, true)"), {"t": current_tenant.get()}
    )


def main(url, tenant):
    engine = create_engine(url.replace("postgres://", "postgresql+psycopg://", 1))
    out = {}
    current_tenant.set(tenant)  # in a web app: a middleware, per request
    with Session(engine) as session:
        out["seen"] = list(session.scalars(text("SELECT name FROM leads ORDER BY name")))
    try:
        with Session(engine) as session, session.begin():
            session.execute(text("INSERT INTO leads (tenant_id, name) VALUES ('someone-else', 'x')"))
        out["foreign_insert"] = "accepted"
    except ProgrammingError as e:
        out["foreign_insert"] = "refused" if getattr(e.orig, "sqlstate", "") == "42501" else str(e)
    current_tenant.set("")
    with Session(engine) as session:
        out["without_tenant"] = list(session.scalars(text("SELECT name FROM leads")))
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

// Node (node-postgres): each request's queries in one transaction with the
// tenant from the gateway's X-Tenant-Id header; row-level security does
// the filtering. Run by crates/tenantry/tests/app_db.rs:
//   node pg.js DATABASE_URL TENANT
const { Pool } = require('pg');

// Runs fn(client) in a transaction that sees only `tenant`'s rows.
async function withTenant(pool, tenant, fn) {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query("SELECT set_config('app.tenant_id', $1, true)", [tenant]); // the one line
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK');
    throw err;
  } finally {
    client.release();
  }
}

async function main(url, tenant) {
  const pool = new Pool({ connectionString: url, max: 1 });
  const out = {};
  out.seen = await withTenant(pool, tenant, async (c) =>
    (await c.query('SELECT name FROM leads ORDER BY name')).rows.map((r) => r.name));
  try {
    await withTenant(pool, tenant, (c) =>
      c.query("INSERT INTO leads (tenant_id, name) VALUES ('someone-else', 'x')"));
    out.foreign_insert = 'accepted';
  } catch (err) {
    out.foreign_insert = err.code === '42501' ? 'refused' : String(err);
  }
  // The same pooled connection, outside a tenant transaction: nothing.
  out.without_tenant = (await pool.query('SELECT name FROM leads')).rows.map((r) => r.name);
  await pool.end();
  console.log(JSON.stringify(out));
}

main(process.argv[2], process.argv[3]).catch((err) => { console.error(err); process.exit(1); });

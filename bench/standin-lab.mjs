// Writes DIR/lab.yaml: inventory/lab.yaml (the seed topology on lab addresses) made installable on
// the lab, which has the Debian archive only: Airflow from the test suite's stand-in wheelhouse
// (test/standin/, NOT Airflow; built into DIR/wheelhouse first) with the Debian packages it imports,
// and DAG storage in mode sync (the lab kernel has no NFS) from a one-file DAG folder DIR/dags.
// Comments and layout are kept.
// Usage: node bench/standin-lab.mjs DIR
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseDocument } from 'yaml';

const dir = process.argv[2];
if (!dir) throw new Error('usage: node bench/standin-lab.mjs DIR');
const doc = parseDocument(readFileSync('inventory/lab.yaml', 'utf8'));
doc.setIn(['cluster', 'airflow'], doc.createNode({
  install: { source: 'wheelhouse', wheelhouse: path.join(dir, 'wheelhouse') },
  osPackages: ['python3-psycopg2', 'python3-celery', 'python3-sqlalchemy'],
}));
// A DAG folder to ship (mode sync needs one): one file that compiles with the hosts' Python.
mkdirSync(path.join(dir, 'dags'), { recursive: true });
writeFileSync(path.join(dir, 'dags', 'bench_dag.py'), '# The DAG folder bench/status.sh ships to the lab.\nSCHEDULE = "@daily"\n');
doc.setIn(['cluster', 'dags'], doc.createNode({ mode: 'sync', source: 'dags' }));
writeFileSync(path.join(dir, 'lab.yaml'), doc.toString());

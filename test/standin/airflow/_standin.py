"""The stand-in's commands (see test/standin/README.md). Reads $AIRFLOW_HOME/airflow.cfg like Airflow."""
import configparser
import getpass
import hashlib
import http.server
import json
import os
import shlex
import signal
import subprocess
import socket
import ssl
import sys
import threading
import time
import urllib.parse

_conf = None

# Seconds: a job whose heartbeat is older is dead (Airflow's scheduler_health_check_threshold).
ALIVE = 30
HEARTBEAT = 5


def major():
    """The Airflow major this stand-in was built as (build_wheel.py VERSION): 2 or 3."""
    from importlib.metadata import version

    return int(version("apache-airflow").split(".")[0])


def conf():
    """airflow.cfg of $AIRFLOW_HOME (raw: no interpolation)."""
    global _conf
    if _conf is None:
        home = os.environ.get("AIRFLOW_HOME") or sys.exit("AIRFLOW_HOME is not set")
        _conf = configparser.RawConfigParser()
        if not _conf.read(os.path.join(home, "airflow.cfg")):
            sys.exit(f"no airflow.cfg in {home}")
    return _conf


def hostname():
    """[core] hostname_callable, `module.function` as Airflow reads it."""
    mod, _, fn = conf().get("core", "hostname_callable").rpartition(".")
    return getattr(__import__(mod), fn)()


def connect():
    """A psycopg2 connection from [database] sql_alchemy_conn (postgresql+psycopg2://u:p@h:port/db)."""
    import psycopg2

    url = urllib.parse.urlsplit(conf().get("database", "sql_alchemy_conn"))
    if not url.scheme.startswith("postgresql"):
        sys.exit(f"sql_alchemy_conn: not PostgreSQL: {url.scheme}")
    return psycopg2.connect(host=url.hostname, port=url.port, user=url.username, password=url.password,
                            dbname=url.path.lstrip("/"), connect_timeout=5)


def query(sql, args=(), fetch=True):
    with connect() as c, c.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall() if fetch else None


SCHEMA = """
select pg_advisory_xact_lock(4242);
create table if not exists standin_migrations (id serial primary key, hostname text not null, at timestamptz not null default now());
alter table standin_migrations add column if not exists version text;
alter table standin_migrations add column if not exists kind text not null default 'migrate';
create table if not exists job (id serial primary key, job_type text not null, hostname text not null, state text not null,
  start_date timestamptz not null default now(), latest_heartbeat timestamptz not null default now());
create table if not exists ab_user (id serial primary key, username text unique not null, first_name text, last_name text,
  email text, role text, password_hash text not null);
"""


def own_version():
    from importlib.metadata import version

    return version("apache-airflow")


def db(args):
    # The schema "version" is the Airflow version of the last migrate or downgrade recorded, as
    # Alembic's head revision tracks the installed version in Airflow.
    if args[:1] == ["migrate"]:
        with connect() as c, c.cursor() as cur:
            cur.execute(SCHEMA)
            cur.execute("insert into standin_migrations (hostname, version) values (%s, %s)", (hostname(), own_version()))
        print("Database migrating done!")
        return 0
    if args[:1] == ["downgrade"]:
        to = opt(args, "--to-version", "-n")
        if not to or not ("-y" in args or "--yes" in args):
            print("db downgrade: the stand-in needs --to-version VERSION and --yes", file=sys.stderr)
            return 2
        if int(to.split(".")[0]) > major():
            print(f"db downgrade: {to} is newer than this Airflow ({own_version()})", file=sys.stderr)
            return 1
        with connect() as c, c.cursor() as cur:
            cur.execute(SCHEMA)
            cur.execute("insert into standin_migrations (hostname, version, kind) values (%s, %s, 'downgrade')", (hostname(), to))
        print(f"Downgrade to {to} done")
        return 0
    if args[:1] == ["check-migrations"]:
        try:
            rows = query("select version from standin_migrations order by id desc limit 1")
        except Exception as e:  # no table yet, or no database
            print(f"migrations pending: {e}", file=sys.stderr)
            return 1
        if not rows or rows[0][0] not in (None, own_version()):
            print(f"migrations pending: the schema is at {rows[0][0] if rows else 'nothing'}, this Airflow is {own_version()}", file=sys.stderr)
            return 1
        return 0
    if args[:1] == ["check"]:
        query("select 1")
        print("Connection successful.")
        return 0
    return usage()


def opt(args, *names, default=None):
    for n in names:
        if n in args:
            return args[args.index(n) + 1]
    return default


def users(args):
    if args[:1] == ["list"]:
        rows = query("select id, username, email, first_name, last_name, role from ab_user order by id")
        keys = ["id", "username", "email", "first_name", "last_name", "roles"]
        print(json.dumps([dict(zip(keys, r)) for r in rows]))
        return 0
    if args[:1] == ["create"]:
        name = opt(args, "--username", "-u")
        if query("select 1 from ab_user where username = %s", (name,)):
            print(f"{name} already exist in the db")
            return 0
        if "--password" in args or "-p" in args:
            sys.exit("the stand-in refuses --password: a password never goes on a command line")
        pw = getpass.getpass("Password:")
        if pw != getpass.getpass("Repeat for confirmation:") or not pw:
            sys.exit("Passwords did not match")
        salt = os.urandom(16)
        h = "pbkdf2:sha256:" + salt.hex() + ":" + hashlib.pbkdf2_hmac("sha256", pw.encode(), salt, 100000).hex()
        query("insert into ab_user (username, first_name, last_name, email, role, password_hash) values (%s, %s, %s, %s, %s, %s)",
              (name, opt(args, "--firstname", "-f"), opt(args, "--lastname", "-l"), opt(args, "--email", "-e"), opt(args, "--role", "-r"), h),
              fetch=False)
        print(f'User "{name}" created with role "{opt(args, "--role", "-r")}"')
        return 0
    return usage()


CONNECTION_TABLE = """
create table if not exists connection (conn_id text primary key, conn_type text, host text, login text,
  port integer, schema text, extra text)
"""


def connections(args):
    """`connections import [--overwrite] FILE` (Airflow's JSON: {conn_id: {conn_type, host, ...}}) and `connections list -o json`."""
    if args[:1] == ["import"]:
        files = [a for a in args[1:] if not a.startswith("-")]
        with open(files[0]) as f:
            conns = json.load(f)
        query(CONNECTION_TABLE, fetch=False)
        for cid, c in conns.items():
            exists = query("select 1 from connection where conn_id = %s", (cid,))
            if exists and "--overwrite" not in args:
                print(f"Could not import connection {cid}: connection already exists.")
                continue
            query(
                "insert into connection (conn_id, conn_type, host, login, port, schema, extra) values (%s, %s, %s, %s, %s, %s, %s) "
                "on conflict (conn_id) do update set conn_type = excluded.conn_type, host = excluded.host, login = excluded.login, "
                "port = excluded.port, schema = excluded.schema, extra = excluded.extra",
                (cid, c.get("conn_type"), c.get("host"), c.get("login"), c.get("port"), c.get("schema"), c.get("extra")),
                fetch=False,
            )
            print(f"Imported connection {cid}")
        return 0
    if args[:1] == ["list"]:
        query(CONNECTION_TABLE, fetch=False)
        rows = query("select conn_id, conn_type, host, login, port from connection order by conn_id")
        print(json.dumps([dict(zip(["conn_id", "conn_type", "host", "login", "port"], r)) for r in rows]))
        return 0
    return usage()


def alive(job_type, host=None):
    sql = "select hostname, latest_heartbeat from job where job_type = %s and state = 'running' and latest_heartbeat > now() - make_interval(secs => %s)"
    rows = query(sql + (" and hostname = %s" if host else "") + " order by latest_heartbeat desc", (job_type, ALIVE) + ((host,) if host else ()))
    return rows


def jobs(args):
    if args[:1] != ["check"]:
        return usage()
    rows = alive(opt(args, "--job-type", default="SchedulerJob"), hostname() if "--local" in args else opt(args, "--hostname"))
    if rows:
        print("Found one alive job." if len(rows) == 1 else f"Found {len(rows)} alive jobs.")
        return 0
    print("No alive jobs found.")
    return 1


def heartbeat(job_type, each=None):
    """Runs until SIGTERM: one job row, its heartbeat every HEARTBEAT s (reconnecting after a failover)."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    job_id = None
    while not stop.is_set():
        try:
            if job_id is None:
                job_id = query("insert into job (job_type, hostname, state) values (%s, %s, 'running') returning id", (job_type, hostname()))[0][0]
                print(f"{job_type} {job_id} running on {hostname()}", flush=True)
            else:
                query("update job set latest_heartbeat = now() where id = %s", (job_id,), fetch=False)
            if each:
                each()
        except Exception as e:
            print(f"heartbeat failed: {e}", file=sys.stderr, flush=True)
        stop.wait(HEARTBEAT)
    if job_id is not None:
        query("update job set state = 'success' where id = %s", (job_id,), fetch=False)
    return 0


def count_dags(folder=None):
    folder = folder or conf().get("core", "dags_folder")
    n = sum(1 for _r, _d, files in os.walk(folder) for f in files if f.endswith(".py"))
    print(f"parsed {folder}: {n} DAG file(s)", flush=True)


GIT_BUNDLE = "airflow.providers.git.bundles.git.GitDagBundle"


def git_bundles():
    """[dag_processor] dag_bundle_config_list (JSON): the entries of class GitDagBundle, as Airflow 3 reads them."""
    raw = conf().get("dag_processor", "dag_bundle_config_list", fallback="")
    return [b for b in (json.loads(raw) if raw.strip() else []) if b.get("classpath") == GIT_BUNDLE]


def git_connection(conn_id):
    """The Git connection from AIRFLOW_CONN_<ID> (JSON form): (url, environment with GIT_SSH_COMMAND built from
    the extras key_file, strict_host_key_checking, known_hosts_file, as the Git provider's hook does)."""
    raw = os.environ.get(f"AIRFLOW_CONN_{conn_id.upper()}") or sys.exit(f"connection {conn_id}: AIRFLOW_CONN_{conn_id.upper()} is not set")
    c = json.loads(raw)
    extra = c.get("extra") or {}
    ssh = ["ssh"]
    if extra.get("key_file"):
        ssh += ["-i", shlex.quote(extra["key_file"]), "-o", "IdentitiesOnly=yes"]
    ssh += ["-o", f"StrictHostKeyChecking={extra.get('strict_host_key_checking', 'no')}"]
    if extra.get("known_hosts_file"):
        ssh += ["-o", f"UserKnownHostsFile={shlex.quote(extra['known_hosts_file'])}"]
    return c["host"], {**os.environ, "GIT_SSH_COMMAND": " ".join(ssh), "GIT_TERMINAL_PROMPT": "0"}


def git(*args, env=None):
    subprocess.run(["git", *args], check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=25)


def refresh_git_bundle(bundle):
    """One refresh of a Git bundle in Airflow's layout: <storage>/<name>/bare (a bare clone of the URL, every
    branch and tag fetched) and <storage>/<name>/tracking_repo (a clone of the bare one, reset to the tracked
    ref). Returns the folder the DAGs are read from (tracking_repo or its subdir)."""
    kw = bundle.get("kwargs") or {}
    storage = conf().get("dag_processor", "dag_bundle_storage_path", fallback=None) or "/tmp/airflow/dag_bundles"
    base = os.path.join(storage, bundle["name"])
    bare, repo = os.path.join(base, "bare"), os.path.join(base, "tracking_repo")
    url, env = git_connection(kw.get("git_conn_id") or "git_default")
    os.makedirs(base, exist_ok=True)
    if not os.path.exists(bare):
        git("clone", "--bare", url, bare, env=env)
    git("-C", bare, "fetch", "origin", "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*", env=env)
    if not os.path.exists(repo):
        git("clone", bare, repo)
    git("-C", repo, "fetch", "origin", "+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*")
    ref = kw["tracking_ref"]
    remote = subprocess.run(["git", "-C", repo, "rev-parse", "--verify", "--quiet", f"refs/remotes/origin/{ref}"], stdout=subprocess.DEVNULL)
    git("-C", repo, "reset", "--hard", f"origin/{ref}" if remote.returncode == 0 else ref)
    return os.path.join(repo, kw["subdir"]) if kw.get("subdir") else repo


def dag_processor_tick(state={}):
    """Each heartbeat of the DAG processor: with Git bundles (3.x), a refresh of each every refresh_interval
    seconds (errors to stderr, the journal: the processor keeps running, as Airflow's does); else the DAG folder."""
    bundles = git_bundles() if major() >= 3 else []
    if not bundles:
        count_dags()
        return
    now = time.monotonic()
    for b in bundles:
        every = int((b.get("kwargs") or {}).get("refresh_interval") or conf().get("dag_processor", "refresh_interval", fallback="300"))
        if now - state.get(b["name"], -1e9) < every:
            continue
        state[b["name"]] = now
        try:
            count_dags(refresh_git_bundle(b))
        except subprocess.CalledProcessError as e:
            print(f"bundle {b['name']}: git {' '.join(e.cmd[1:3])} failed: {(e.stderr or b'').decode().strip()}", file=sys.stderr, flush=True)
        except Exception as e:
            print(f"bundle {b['name']}: {e}", file=sys.stderr, flush=True)


class Handler(http.server.BaseHTTPRequestHandler):
    def reply(self, code, body, ctype="application/json", headers=()):
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):
        print(f"{self.address_string()} {fmt % args}", file=sys.stderr, flush=True)


def tls_files(section, cert_key, key_key):
    """The UI server's certificate and key from airflow.cfg, as Airflow reads them: both set turns
    HTTPS on, one alone is refused ("Need both"), neither is plain HTTP."""
    cert = conf().get(section, cert_key, fallback="")
    key = conf().get(section, key_key, fallback="")
    if bool(cert) != bool(key):
        sys.exit(f"[{section}] {cert_key} and {key_key}: need both, have one")
    return (cert, key) if cert else None


def serve(port, handler, tls=None):
    server = http.server.ThreadingHTTPServer(("0.0.0.0", port), handler)
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(*tls)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"listening on 0.0.0.0:{port}{' (HTTPS)' if tls else ''}", flush=True)
    server.serve_forever()
    return 0


def health():
    """Airflow's /health shape: per component a status, plus the latest heartbeat."""
    out = {}
    try:
        query("select 1")
        out["metadatabase"] = {"status": "healthy"}
    except Exception:
        out["metadatabase"] = {"status": "unhealthy"}
        return out
    for key, job_type in (("scheduler", "SchedulerJob"), ("triggerer", "TriggererJob"), ("dag_processor", "DagProcessorJob")):
        rows = alive(job_type)
        out[key] = {"status": "healthy" if rows else "unhealthy", f"latest_{key}_heartbeat": rows[0][1].isoformat() if rows else None}
    return out


def webserver(_args):
    if not conf().get("webserver", "secret_key"):
        sys.exit("[webserver] secret_key is empty")

    class Web(Handler):
        def do_GET(self):
            if self.path == "/health":
                self.reply(200, json.dumps(health()))
            else:
                self.reply(200, "<html>airflow-ha stand-in webserver</html>", "text/html")

    return serve(conf().getint("webserver", "web_server_port"), Web, tls_files("webserver", "web_server_ssl_cert", "web_server_ssl_key"))


def api_server(_args):
    """Airflow 3's `airflow api-server`: the UI's health JSON at /api/v2/monitor/health and the
    Execution API's health at /execution/health, on [api] port. Like Airflow with several API
    servers, it refuses to start without [api_auth] jwt_secret (a random key per process would make
    every other server reject its tokens) or [api] secret_key."""
    for section, key in (("api_auth", "jwt_secret"), ("api", "secret_key")):
        if not conf().has_option(section, key) or not conf().get(section, key):
            sys.exit(f"[{section}] {key} is not set: refusing to start (every api-server must share it)")

    class Api(Handler):
        def do_GET(self):
            if self.path == "/api/v2/monitor/health":
                self.reply(200, json.dumps(health()))
            elif self.path.rstrip("/") == "/execution/health":
                self.reply(200, json.dumps({"status": "healthy"}))
            else:
                self.reply(200, "<html>airflow-ha stand-in api-server</html>", "text/html")

    return serve(conf().getint("api", "port"), Api, tls_files("api", "ssl_cert", "ssl_key"))


def execution_api_reachable(wait=60):
    """Airflow 3 workers run tasks through the Execution API: [core] execution_api_server_url must be
    set and answer its health path. Waits up to `wait` s (the api-servers may start after this host's
    worker), then exits 1 naming the URL (systemd restarts the unit)."""
    url = conf().get("core", "execution_api_server_url", fallback="")
    if not url:
        sys.exit("[core] execution_api_server_url is not set: an Airflow 3 worker cannot run tasks")
    import urllib.request

    # Like the Task SDK's client: the default trust store plus [api] ssl_cert when it is set.
    ctx = ssl.create_default_context()
    if conf().get("api", "ssl_cert", fallback=""):
        ctx.load_verify_locations(conf().get("api", "ssl_cert"))
    end = time.time() + wait
    while True:
        try:
            with urllib.request.urlopen(url.rstrip("/") + "/health", timeout=5, context=ctx) as r:
                if r.status == 200:
                    print(f"Execution API at {url} answers", flush=True)
                    return
        except Exception as e:
            err = e
        if time.time() > end:
            sys.exit(f"Execution API at {url} does not answer: {err}")
        time.sleep(3)


def flower(_args):
    import base64

    want = "Basic " + base64.b64encode(conf().get("celery", "flower_basic_auth").encode()).decode()

    class Flower(Handler):
        def do_GET(self):
            if self.headers.get("Authorization") != want:
                self.reply(401, "Unauthorized", "text/plain", [("WWW-Authenticate", 'Basic realm="flower"')])
            elif self.path == "/healthcheck":
                self.reply(200, "OK", "text/plain")
            else:
                self.reply(200, "<html>airflow-ha stand-in flower</html>", "text/html")

    return serve(conf().getint("celery", "flower_port"), Flower)


def log_server():
    """What `airflow celery worker` serves on worker_log_server_port: files under base_log_folder."""
    folder = conf().get("logging", "base_log_folder")

    class Logs(Handler):
        def do_GET(self):
            rel = urllib.parse.unquote(self.path.removeprefix("/log/"))
            full = os.path.realpath(os.path.join(folder, rel))
            if not full.startswith(os.path.realpath(folder) + os.sep) or not os.path.isfile(full):
                self.reply(404, "not found", "text/plain")
                return
            with open(full) as f:
                self.reply(200, f.read(), "text/plain")

    server = http.server.ThreadingHTTPServer(("0.0.0.0", conf().getint("logging", "worker_log_server_port")), Logs)
    threading.Thread(target=server.serve_forever, daemon=True).start()


def celery(args):
    if args[:1] == ["worker"]:
        if major() >= 3:
            execution_api_reachable()
        from airflow.providers.celery.executors.celery_executor import app

        log_server()
        folder = conf().get("logging", "base_log_folder")
        with open(os.path.join(folder, f"worker-{hostname()}.log"), "a") as f:
            f.write(f"worker started at {time.ctime()}\n")
        argv = ["worker", "--loglevel=INFO", "-Q", opt(args, "--queues", "-q", default="default"),
                "-n", opt(args, "--celery-hostname", "-H", default=f"celery@{hostname()}")]
        conc = opt(args, "--concurrency", "-c") or (conf().get("celery", "worker_concurrency") if conf().has_option("celery", "worker_concurrency") else "2")
        app.worker_main(argv + ["-c", conc])
        return 0
    if args[:1] == ["flower"]:
        return flower(args[1:])
    return usage()


def usage():
    print("usage: airflow {version|db|users|connections|jobs|scheduler|triggerer|dag-processor|webserver (2.x)|api-server (3.x)|celery} ... (airflow-ha stand-in)", file=sys.stderr)
    return 2


def main(argv=None):
    args = list(sys.argv[1:] if argv is None else argv)
    cmd, rest = (args[0], args[1:]) if args else ("", [])
    if cmd == "version":
        from importlib.metadata import version

        print(version("apache-airflow"))
        return 0
    # Airflow 3 replaced `webserver` by `api-server`; each major refuses the other's command, as Airflow does.
    ui = {"api-server": api_server} if major() >= 3 else {"webserver": webserver}
    table = {
        **ui,
        "db": db,
        "users": users,
        "connections": connections,
        "jobs": jobs,
        "scheduler": lambda _a: heartbeat("SchedulerJob"),
        "triggerer": lambda _a: heartbeat("TriggererJob"),
        "dag-processor": lambda _a: heartbeat("DagProcessorJob", dag_processor_tick),
        "celery": celery,
    }
    return table[cmd](rest) if cmd in table else usage()


def celery_main():
    """The `celery` console script a real Airflow virtualenv has (Celery's own CLI)."""
    from celery.__main__ import main as celery_cli

    sys.exit(celery_cli())

# The load of `airflow-ha drill` (src/drill/run.ts), run on one Airflow host by the interpreter of
# the Airflow virtualenv as the Airflow user. Its settings (with the database and broker passwords)
# arrive as the first line of stdin, this script as the rest: nothing secret is on a command line.
#
# mode "load": until the stop file exists (or max_seconds pass), in parallel
#   db      INSERTs through the HAProxy write port (autocommit); an id is recorded once COMMIT returned
#   broker  persistent publishes to a quorum queue with publisher confirms; an id is recorded once acked
#   tasks   Celery's built-in task celery.accumulate sent to the workers' queue (broker confirms on)
# then checks what came through (SELECT every id, consume the queue, wait for every task's result),
# removes the drill table, queue and task results, and prints one DRILL line with the timelines.
# mode "cleanup": removes the drill table and queue (after a run that did not get to its end).
#
# Output: lines starting with "DRILL " and a JSON object: {"event": "ready", "t": ms} once every
# stream had its first acknowledgement, {"event": "result", ...} at the end. Times are the host's
# clock in milliseconds since the epoch.
import json
import os
import sys
import threading
import time
from datetime import timezone

# A real Airflow virtualenv has psycopg2 (the Postgres provider), amqp and celery (the Celery
# provider). Where one is missing, the OS's python3 packages of the same interpreter are used.
try:
    import amqp
    import psycopg2
except ImportError:
    sys.path.append("/usr/lib/python3/dist-packages")
    import amqp
    import psycopg2

CFG = globals().get("CFG") or json.loads(sys.stdin.readline())
B, D = CFG["broker"], CFG["db"]
# Passwords are [A-Za-z0-9] (src/inventory/secrets.ts): safe in a URL as they are.
BROKER_URL = ";".join(f"amqp://{B['user']}:{B['password']}@{n}/{B['vhost']}" for n in B["nodes"])
RESULT_BACKEND = f"db+postgresql://{D['user']}:{D['password']}@{D['host']}:{D['port']}/{D['dbname']}"
# cluster.tls: AMQPS with the Airflow user's certificate, verified against the cluster CA (as Celery's broker_use_ssl).
BROKER_SSL = None
if B.get("ssl"):
    import ssl

    BROKER_SSL = {"keyfile": B["ssl"]["key"], "certfile": B["ssl"]["cert"], "ca_certs": B["ssl"]["ca"], "cert_reqs": ssl.CERT_REQUIRED}


def now_ms():
    return int(time.time() * 1000)


def say(obj):
    sys.stdout.write("DRILL " + json.dumps(obj) + "\n")
    sys.stdout.flush()


def stopped(deadline):
    return os.path.exists(CFG["stop_file"]) or time.time() > deadline


def db_connect():
    d = CFG["db"]
    # TCP keepalives and tcp_user_timeout: a write to a host that vanished fails in seconds, not minutes.
    conn = psycopg2.connect(host=d["host"], port=d["port"], user=d["user"], password=d["password"], dbname=d["dbname"],
                            connect_timeout=3, keepalives=1, keepalives_idle=2, keepalives_interval=1,
                            keepalives_count=2, tcp_user_timeout=4000, application_name="airflow-ha-drill")
    conn.autocommit = True
    return conn


def retrying(fn, seconds, errors):
    """fn() until it returns without one of `errors`, or `seconds` passed (then its error)."""
    end = time.time() + seconds
    while True:
        try:
            return fn()
        except errors:
            if time.time() > end:
                raise
            time.sleep(1)


def db_retry(fn, seconds=120):
    """fn(cursor) on a fresh connection, retried until it works or `seconds` pass."""
    def once():
        conn = db_connect()
        try:
            with conn.cursor() as cur:
                return fn(cur)
        finally:
            conn.close()

    return retrying(once, seconds, psycopg2.Error)


def amqp_connect():
    b = CFG["broker"]
    last = None
    for node in b["nodes"]:
        try:
            conn = amqp.Connection(host=node, userid=b["user"], password=b["password"], virtual_host=b["vhost"],
                                   connect_timeout=3, read_timeout=5, write_timeout=5, confirm_publish=True,
                                   **({"ssl": BROKER_SSL} if BROKER_SSL else {}))
            conn.connect()
            return conn
        except Exception as e:  # noqa: BLE001 - any failure moves on to the next node
            last = e
    raise last


def amqp_retry(fn, seconds=120):
    """fn(channel) on a fresh connection, retried until it works or `seconds` pass."""
    def once():
        conn = amqp_connect()
        try:
            return fn(conn.channel())
        finally:
            close_quietly(conn)

    return retrying(once, seconds, Exception)


QUORUM = {"x-queue-type": "quorum"}


class Stream:
    """One kind of load: acknowledged ids with their times, and failed attempts."""

    def __init__(self, name):
        self.name = name
        self.acked = []
        self.failures = 0
        self.first_failure = None

    def ack(self, ident):
        self.acked.append([now_ms(), ident])

    def fail(self, err):
        self.failures += 1
        if self.first_failure is None:
            self.first_failure = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__


def close_quietly(conn):
    try:
        conn and conn.close()
    except Exception:  # noqa: BLE001 - the connection may be gone already
        pass


class Channel:
    """An AMQP connection and its one channel, closed together."""

    def __init__(self):
        self.conn = amqp_connect()
        self.channel = self.conn.channel()

    def close(self):
        self.conn.close()


def paced(s, deadline, period, attempt):
    """attempt(i) for i = 1, 2, ... every `period` s until stopped; i is recorded once attempt returned."""
    i = 0
    while not stopped(deadline):
        t0 = time.time()
        i += 1
        try:
            attempt(i)
            s.ack(i)
        except Exception as e:  # noqa: BLE001 - an error, refusal, nack or timeout: not acknowledged
            s.fail(e)
        time.sleep(max(0.0, period - (time.time() - t0)))


class Session:
    """One connection, opened on first use and dropped after an error (the next use reconnects)."""

    def __init__(self, connect):
        self.connect, self.conn = connect, None

    def use(self, fn):
        try:
            if self.conn is None:
                self.conn = self.connect()
            return fn(self.conn)
        except Exception:
            close_quietly(self.conn)
            self.conn = None
            raise


def db_load(s, deadline, period):
    session, table = Session(db_connect), CFG["db"]["table"]

    def insert(conn, i):
        with conn.cursor() as cur:
            cur.execute(f"INSERT INTO {table} (id) VALUES (%s)", (i,))

    paced(s, deadline, period, lambda i: session.use(lambda conn: insert(conn, i)))
    close_quietly(session.conn)


def broker_load(s, deadline, period):
    session, queue = Session(Channel), CFG["broker"]["queue"]

    def publish(c, i):
        # With confirm_publish, basic_publish returns once the broker acknowledged the message
        # (for a quorum queue: once a majority of its replicas wrote it).
        c.channel.basic_publish(amqp.Message(str(i), delivery_mode=2), exchange="", routing_key=queue)

    paced(s, deadline, period, lambda i: session.use(lambda conn: publish(conn, i)))
    close_quietly(session.conn)


def celery_app():
    from celery import Celery

    # The cluster's broker and result backend, as airflow.cfg names them (templates/airflow/airflow.cfg.njk).
    app = Celery("airflow_ha_drill", broker=BROKER_URL, backend=RESULT_BACKEND)
    app.conf.update(broker_transport_options={"confirm_publish": True}, broker_connection_timeout=3,
                    task_default_queue=CFG["tasks"]["queue"], **({"broker_use_ssl": BROKER_SSL} if BROKER_SSL else {}))
    return app


def task_load(s, deadline, period, app, results):
    def send(i):
        task_id = f"airflow-ha-drill-{CFG['run_id']}-{i}"
        # celery.accumulate is built into every Celery app (celery/app/builtins.py), so every
        # worker runs it: it returns its arguments.
        app.send_task("celery.accumulate", args=[i], queue=CFG["tasks"]["queue"], task_id=task_id,
                      retry=True, retry_policy={"max_retries": 2, "interval_start": 0.5, "interval_step": 0.5})
        results[i] = task_id

    paced(s, deadline, period, send)


def setup():
    table = CFG["db"]["table"]
    db_retry(lambda cur: (cur.execute(f"DROP TABLE IF EXISTS {table}"),
                          cur.execute(f"CREATE TABLE {table} (id bigint PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())")), 30)

    delete_queue()
    amqp_retry(lambda ch: ch.queue_declare(CFG["broker"]["queue"], durable=True, auto_delete=False, arguments=QUORUM), 30)


def delete_queue():
    def delete(ch):
        try:
            ch.queue_delete(CFG["broker"]["queue"])
        except amqp.exceptions.NotFound:
            pass

    amqp_retry(delete, 60)


def cleanup():
    table = CFG["db"]["table"]
    db_retry(lambda cur: cur.execute(f"DROP TABLE IF EXISTS {table}"), 60)
    delete_queue()


def verify_db(s):
    table = CFG["db"]["table"]
    present = set(db_retry(lambda cur: (cur.execute(f"SELECT id FROM {table}"), [r[0] for r in cur.fetchall()])[1]))
    return [i for _, i in s.acked if i not in present]


def verify_broker(s):
    def drain(ch):
        got = set()
        while True:
            m = ch.basic_get(CFG["broker"]["queue"], no_ack=True)
            if m is None:
                return got
            got.add(int(m.body))

    got = amqp_retry(drain)
    return [i for _, i in s.acked if i not in got]


def verify_tasks(s, app, results, settle):
    """Waits up to `settle` seconds for every acknowledged task's result; returns the missing ids and the done times."""
    from celery.result import AsyncResult

    end = time.time() + settle
    pending = {i: AsyncResult(t, app=app) for i, t in results.items()}
    done = []
    while pending and time.time() < end:
        for i, r in list(pending.items()):
            try:
                if r.state == "SUCCESS":
                    dd = r.date_done
                    if dd is not None and dd.tzinfo is None:
                        dd = dd.replace(tzinfo=timezone.utc)  # Celery stores date_done as naive UTC
                    done.append([int(dd.timestamp() * 1000) if dd else now_ms(), i])
                    r.forget()
                    del pending[i]
            except Exception:  # noqa: BLE001 - the result store briefly unreachable: ask again
                pass
        if pending:
            time.sleep(1)
    for r in pending.values():
        try:
            r.forget()
        except Exception:  # noqa: BLE001
            pass
    done.sort()
    return sorted(pending), done


def main():
    if CFG["mode"] == "cleanup":
        cleanup()
        say({"event": "cleaned"})
        return
    setup()
    deadline = time.time() + CFG["max_seconds"]
    streams = {"db": Stream("db"), "broker": Stream("broker")}
    threads = [threading.Thread(target=db_load, args=(streams["db"], deadline, 1.0 / CFG["rate"]["db"])),
               threading.Thread(target=broker_load, args=(streams["broker"], deadline, 1.0 / CFG["rate"]["broker"]))]
    app, results = None, {}
    if CFG.get("tasks"):
        app = celery_app()
        streams["tasks"] = Stream("tasks")
        threads.append(threading.Thread(target=task_load, args=(streams["tasks"], deadline, 1.0 / CFG["rate"]["tasks"], app, results)))
    for t in threads:
        t.daemon = True
        t.start()
    while not all(s.acked for s in streams.values()):
        if stopped(deadline):
            break
        time.sleep(0.1)
    say({"event": "ready", "t": now_ms()})
    for t in threads:
        t.join()
    lost = {"db": verify_db(streams["db"]), "broker": verify_broker(streams["broker"])}
    completed = None
    if app is not None:
        lost["tasks"], completed = verify_tasks(streams["tasks"], app, results, CFG["tasks"]["settle_seconds"])
    cleanup()
    out = {}
    for name, s in streams.items():
        out[name] = {"acked": s.acked, "failures": s.failures, "first_failure": s.first_failure, "lost": lost[name]}
    if completed is not None:
        out["tasks"]["completed"] = completed
    say({"event": "result", "streams": out})


main()

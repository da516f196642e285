"""The Celery app, at the module path Airflow's Celery provider uses (`celery --app ...app`)."""
import socket

from celery import Celery

from airflow._standin import conf

app = Celery(
    "airflow.providers.celery.executors.celery_executor",
    broker=conf().get("celery", "broker_url"),
    backend=conf().get("celery", "result_backend"),
)
# As Airflow's provider configures it: acks late, one message prefetched, queue "default".
app.conf.update(task_default_queue="default", task_acks_late=True, worker_prefetch_multiplier=1)


@app.task(name="standin.echo", bind=True)
def echo(self, tag):
    """Returns who ran the task and from which queue."""
    return {"hostname": socket.gethostname(), "tag": tag, "queue": (self.request.delivery_info or {}).get("routing_key")}

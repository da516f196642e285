"""The Celery app, at the module path Airflow's Celery provider uses (`celery --app ...app`)."""
import socket
import ssl

from celery import Celery

from airflow._standin import conf

app = Celery(
    "airflow.providers.celery.executors.celery_executor",
    broker=conf().get("celery", "broker_url"),
    backend=conf().get("celery", "result_backend"),
)
# As Airflow's provider configures it: acks late, one message prefetched, queue "default".
app.conf.update(task_default_queue="default", task_acks_late=True, worker_prefetch_multiplier=1)
# [celery] ssl_active with an amqp:// broker_url: broker_use_ssl as the provider's default_celery.py builds it.
if conf().has_option("celery", "ssl_active") and conf().getboolean("celery", "ssl_active"):
    app.conf.broker_use_ssl = {
        "keyfile": conf().get("celery", "ssl_key"),
        "certfile": conf().get("celery", "ssl_cert"),
        "ca_certs": conf().get("celery", "ssl_cacert"),
        "cert_reqs": ssl.CERT_REQUIRED,
    }


@app.task(name="standin.echo", bind=True)
def echo(self, tag):
    """Returns who ran the task and from which queue."""
    return {"hostname": socket.gethostname(), "tag": tag, "queue": (self.request.delivery_info or {}).get("routing_key")}

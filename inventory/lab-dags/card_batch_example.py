"""An example DAG that `airflow-ha bootstrap -i inventory/lab.yaml` ships to the lab's Airflow hosts
(cluster.dags.mode sync): a nightly card batch pulled from the FTP drop, then handed to the SSH target.
Edit or replace the folder, then `airflow-ha deploy-dags -i inventory/lab.yaml`."""
from datetime import datetime

from airflow import DAG
from airflow.operators.bash import BashOperator

with DAG(
    dag_id="card_batch_example",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["example"],
) as dag:
    fetch = BashOperator(task_id="fetch_batch", bash_command="echo fetch the batch from the FTP drop")
    process = BashOperator(task_id="process_batch", bash_command="echo hand the batch to the target")
    fetch >> process

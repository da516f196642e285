"""airflow-ha's lab stand-in for Apache Airflow (see test/standin/README.md). Not Airflow."""
import sys

# The virtualenv does not see Debian's packages (psycopg2, celery, SQLAlchemy): append them, after
# the virtualenv's own folders so nothing in it is shadowed.
if "/usr/lib/python3/dist-packages" not in sys.path:
    sys.path.append("/usr/lib/python3/dist-packages")

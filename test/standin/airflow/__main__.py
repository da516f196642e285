"""`airflow` console entry of the stand-in."""
import sys

from airflow._standin import main

if __name__ == "__main__":
    sys.exit(main())

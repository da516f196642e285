"""Packs the stand-in package as a wheel: build_wheel.py VERSION OUTDIR.

VERSION chooses the stand-in's mode at run time (its own dist-info version): 2.x has `webserver`,
3.x has `api-server` and a worker that needs the Execution API (see README.md).

Writes OUTDIR/apache_airflow-VERSION-py3-none-any.whl (PEP 427: a zip with the package, its
.dist-info METADATA, WHEEL, entry_points.txt and RECORD) and OUTDIR/constraints.txt (empty: the
stand-in has no dependencies to pin). Standard library only.
"""
import base64
import hashlib
import os
import sys
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))


def digest(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def main(version, outdir):
    os.makedirs(outdir, exist_ok=True)
    dist = f"apache_airflow-{version}.dist-info"
    files = []
    for root, _dirs, names in os.walk(os.path.join(HERE, "airflow")):
        for name in sorted(names):
            if name.endswith(".py"):
                full = os.path.join(root, name)
                with open(full, "rb") as f:
                    files.append((os.path.relpath(full, HERE).replace(os.sep, "/"), f.read()))
    meta = "\n".join([
        "Metadata-Version: 2.1",
        "Name: apache-airflow",
        f"Version: {version}",
        "Summary: airflow-ha lab stand-in for Apache Airflow (not Airflow)",
        "Provides-Extra: celery",
        "Provides-Extra: fab",
        "Provides-Extra: postgres",
        "",
    ])
    wheel = "Wheel-Version: 1.0\nGenerator: airflow-ha build_wheel.py\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    entry = "[console_scripts]\nairflow = airflow.__main__:main\ncelery = airflow._standin:celery_main\n"
    files += [(f"{dist}/METADATA", meta.encode()), (f"{dist}/WHEEL", wheel.encode()), (f"{dist}/entry_points.txt", entry.encode())]
    record = "".join(f"{name},{digest(data)},{len(data)}\n" for name, data in files) + f"{dist}/RECORD,,\n"
    path = os.path.join(outdir, f"apache_airflow-{version}-py3-none-any.whl")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files:
            z.writestr(name, data)
        z.writestr(f"{dist}/RECORD", record)
    with open(os.path.join(outdir, "constraints.txt"), "w") as f:
        f.write("# the stand-in has no dependencies\n")
    print(path)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

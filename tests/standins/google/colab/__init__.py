"""A STAND-IN for Colab's ``google.colab`` package, for tests only (Colab cannot be reached here).

It follows the documented contract of the two calls vemoclap uses:
- ``files.upload()`` writes each chosen file into the working directory under its browser name
  (adding " (1)", " (2)"... when that name is taken) and returns {original name: bytes};
  the "chosen" file is the path in $VEMOCLAP_STANDIN_UPLOAD (nothing chosen when unset);
- ``drive.mount(path)`` mounts Google Drive at ``path``; here it records the call (``drive.mounted``)
  and makes ``path/MyDrive``.
Put ``tests/standins`` on PYTHONPATH to use it (``google`` stays a namespace package, so
``google.protobuf`` still imports).
"""

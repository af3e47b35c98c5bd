"""The one exception type for anticipated failures (bad files, impossible config values).

`run.py` prints its message as a single line on stderr and exits with status 2; anything else keeps its traceback.
"""


class VaeError(Exception):
  """Bad input the user can fix; the message names the file or key and what is wrong."""

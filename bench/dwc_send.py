"""dicomweb-client as a STOW-RS sender: read the files, store them in one request.

Prints the seconds spent reading and sending (interpreter start-up excluded).
"""

import sys
import time

from dicomweb_client.api import DICOMwebClient
from pydicom import dcmread

url, files = sys.argv[1], sys.argv[2:]
t0 = time.perf_counter()
client = DICOMwebClient(url=url)
client.store_instances([dcmread(f) for f in files])
print(f"{time.perf_counter() - t0:.6f}")

"""A real SMTP server for the mail tests: aiosmtpd on 127.0.0.1:PORT that
writes every message it accepts to DIR/<n>.eml, and prints "ready" once it
listens. Each message gets a first header line "X-Catcher-TLS:" with the TLS
version it came over, or "none".

usage: catcher.py PORT DIR [starttls|wrapper CERT_PEM KEY_PEM]
  starttls: offers STARTTLS and refuses mail until the client has used it;
  wrapper: TLS from the first byte (smtps).
"""
import itertools
import logging
import os
import signal
import ssl
import sys
import threading

from aiosmtpd.controller import Controller

# A client that refuses our certificate is a test passing, not a traceback.
logging.getLogger("mail.log").setLevel(logging.CRITICAL)
port, folder = int(sys.argv[1]), sys.argv[2]
mode = sys.argv[3] if len(sys.argv) > 3 else None
os.makedirs(folder, exist_ok=True)
counter = itertools.count(len(os.listdir(folder)) + 1)
lock = threading.Lock()


class Catcher:
    async def handle_DATA(self, server, session, envelope):
        tls = server.transport.get_extra_info("ssl_object")
        header = f"X-Catcher-TLS: {tls.version() if tls else 'none'}\r\n".encode()
        with lock:
            n = next(counter)
        path = os.path.join(folder, f"{n:06d}.eml")
        with open(path + ".part", "wb") as f:
            f.write(header + envelope.content)
        os.rename(path + ".part", path)  # a reader never sees half a message
        return "250 OK"


options = {}
if mode is not None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(sys.argv[4], sys.argv[5])
    if mode == "starttls":
        options = {"tls_context": context, "require_starttls": True}
    elif mode == "wrapper":
        options = {"ssl_context": context}
    else:
        sys.exit(f"unknown mode {mode!r}")
controller = Controller(Catcher(), hostname="127.0.0.1", port=port, **options)
controller.start()
print("ready", flush=True)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
signal.signal(signal.SIGINT, lambda *_: stop.set())
stop.wait()
controller.stop()

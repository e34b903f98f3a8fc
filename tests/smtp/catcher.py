"""A real SMTP server for the mail tests: aiosmtpd on 127.0.0.1:PORT that
writes every message it accepts to DIR/<n>.eml, and prints "ready" once it
listens. usage: catcher.py PORT DIR
"""
import itertools
import os
import signal
import sys
import threading

from aiosmtpd.controller import Controller

port, folder = int(sys.argv[1]), sys.argv[2]
os.makedirs(folder, exist_ok=True)
counter = itertools.count(len(os.listdir(folder)) + 1)
lock = threading.Lock()


class Catcher:
    async def handle_DATA(self, server, session, envelope):
        with lock:
            n = next(counter)
        path = os.path.join(folder, f"{n:06d}.eml")
        with open(path + ".part", "wb") as f:
            f.write(envelope.content)
        os.rename(path + ".part", path)  # a reader never sees half a message
        return "250 OK"


controller = Controller(Catcher(), hostname="127.0.0.1", port=port)
controller.start()
print("ready", flush=True)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
signal.signal(signal.SIGINT, lambda *_: stop.set())
stop.wait()
controller.stop()

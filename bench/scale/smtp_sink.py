"""A local SMTP receiver for bench/scale, run as its own process so its CPU is measured
apart from the load generator's: accepts every message and prints one line per message,
`<unix time> <recipient>`, on stdout. Usage: smtp_sink.py PORT"""

import sys
import time

from aiosmtpd.controller import Controller


class Sink:
    async def handle_DATA(self, server, session, envelope):
        sys.stdout.write(f"{time.time():.6f} {envelope.rcpt_tos[0] if envelope.rcpt_tos else '-'}\n")
        sys.stdout.flush()
        return "250 OK"


def main():
    port = int(sys.argv[1])
    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    try:
        sys.stdin.read()  # until the parent closes our stdin (or terminates us)
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


if __name__ == "__main__":
    main()

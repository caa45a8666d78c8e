"""terminado (Jupyter's PTY-over-WebSocket server) as the peer of `cargo xtask bench terminal`:
a new `bash -l` on a PTY for every socket at ws://127.0.0.1:PORT/websocket."""
import sys

import tornado.ioloop
import tornado.web
from terminado import TermSocket, UniqueTermManager


def main() -> None:
    port = int(sys.argv[1])
    manager = UniqueTermManager(shell_command=["bash", "-l"], max_terminals=500)
    app = tornado.web.Application([(r"/websocket", TermSocket, {"term_manager": manager})])
    app.listen(port, "127.0.0.1")
    print("listening", flush=True)
    tornado.ioloop.IOLoop.current().start()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Captures real PostgreSQL server bytes and writes the fuzz seed corpus from them.

Run once, from anywhere: python3 fuzz/seeds/capture.py

It starts a throwaway cluster (initdb + pg_ctl from $PATH or $COPYMAN_PG_BINDIR; as the OS user
`postgres` when run as root) in a temporary directory, talks PQv3 to it over TCP with a tiny
client of its own (trust, cleartext, md5 and SCRAM-SHA-256 logins), records every byte the server
sends, stops the cluster and removes its directory. The server byte streams, cut at the points
the fuzz targets start from, are then written to fuzz/corpus/<target>/seed-<name> behind the
fixed-size parameter prefix each target reads first (see fuzz/README.md).
"""

import base64
import hashlib
import hmac
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

FUZZ = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PASSWORD = "pencil"  # the password copyman_core::fuzzing configures

# -- The throwaway cluster --------------------------------------------------------------------------


def bindir():
    env = os.environ.get("COPYMAN_PG_BINDIR")
    if env:
        return env
    initdb = shutil.which("initdb")
    if not initdb:
        sys.exit("initdb not found: install PostgreSQL or set COPYMAN_PG_BINDIR")
    return os.path.dirname(initdb)


def as_server_user(cmd):
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    def __init__(self):
        base = "/dev/shm" if os.path.isdir("/dev/shm") else None
        self.dir = tempfile.mkdtemp(prefix="copyman-fuzz-capture-", dir=base)
        os.chmod(self.dir, 0o755)
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        bin_ = bindir()
        self.pg_ctl = os.path.join(bin_, "pg_ctl")
        as_server_user([os.path.join(bin_, "initdb"), "-D", self.data, "-U", "postgres",
                        "--auth=trust", "-E", "UTF8", "--locale=C"])
        with open(os.path.join(self.data, "pg_hba.conf"), "w") as hba:
            hba.write("local all all trust\n"
                      "host all trustuser 127.0.0.1/32 trust\n"
                      "host all pwuser 127.0.0.1/32 password\n"
                      "host all md5user 127.0.0.1/32 md5\n"
                      "host all scramuser 127.0.0.1/32 scram-sha-256\n")
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        as_server_user([self.pg_ctl, "-D", self.data, "-l", os.path.join(self.dir, "log"),
                        "-o", opts, "-w", "start"])

    def stop(self):
        try:
            as_server_user([self.pg_ctl, "-D", self.data, "-m", "immediate", "stop"])
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


# -- A tiny PQv3 client that records what the server sends -----------------------------------------


def message(tag, body):
    return tag + struct.pack("!I", len(body) + 4) + body


def cstr(s):
    return s.encode() + b"\0"


class Conn:
    def __init__(self, port, user, database="postgres"):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.user = user
        self.buf = b""
        self.marks = {}  # name -> offset in self.log
        self.log = b""  # every byte the server sent
        params = b"".join(cstr(k) + cstr(v) for k, v in
                          [("user", user), ("database", database), ("client_encoding", "UTF8"),
                           ("DateStyle", "ISO"), ("IntervalStyle", "postgres"),
                           ("extra_float_digits", "3")]) + b"\0"
        self.sock.sendall(struct.pack("!II", len(params) + 8, 196608) + params)

    def mark(self, name):
        """Remembers where the stream stands (whole messages only are consumed)."""
        self.marks[name] = len(self.log) - len(self.buf)

    def recv(self):
        """The next whole message (tag, body), or None at EOF."""
        while True:
            if len(self.buf) >= 5:
                (length,) = struct.unpack("!I", self.buf[1:5])
                if len(self.buf) >= 1 + length:
                    tag, body = self.buf[:1], self.buf[5:1 + length]
                    self.buf = self.buf[1 + length:]
                    return tag, body
            data = self.sock.recv(65536)
            if not data:
                return None
            self.log += data
            self.buf += data

    def until(self, tags):
        """Messages up to and including the first whose tag is in `tags` (or EOF)."""
        out = []
        while True:
            m = self.recv()
            if m is None:
                return out
            out.append(m)
            if m[0] in tags:
                return out

    def send(self, data):
        self.sock.sendall(data)

    def login(self, password=PASSWORD):
        self.mark("start")
        scram = None
        while True:
            m = self.recv()
            if m is None:
                return False
            tag, body = m
            if tag == b"E":
                return False
            if tag == b"Z":
                self.mark("ready")
                return True
            if tag != b"R":
                continue
            (code,) = struct.unpack("!i", body[:4])
            self.mark(f"after-auth-{code}")
            if code == 3:
                self.send(message(b"p", cstr(password)))
            elif code == 5:
                inner = hashlib.md5((password + self.user).encode()).hexdigest()
                outer = hashlib.md5(inner.encode() + body[4:8]).hexdigest()
                self.send(message(b"p", cstr("md5" + outer)))
            elif code == 10:
                nonce = base64.b64encode(os.urandom(18)).decode()
                scram = {"bare": f"n=,r={nonce}", "nonce": nonce}
                first = ("n,," + scram["bare"]).encode()
                self.send(message(b"p", cstr("SCRAM-SHA-256") + struct.pack("!i", len(first))
                                  + first))
            elif code == 11:
                server_first = body[4:].decode()
                self.scram_first = server_first
                scram["server_first"] = server_first
                attrs = dict(a.split("=", 1) for a in server_first.split(","))
                salted = hashlib.pbkdf2_hmac("sha256", password.encode(),
                                             base64.b64decode(attrs["s"]), int(attrs["i"]))
                client_key = hmac.new(salted, b"Client Key", "sha256").digest()
                stored = hashlib.sha256(client_key).digest()
                without_proof = f"c=biws,r={attrs['r']}"
                auth_msg = f"{scram['bare']},{server_first},{without_proof}".encode()
                sig = hmac.new(stored, auth_msg, "sha256").digest()
                proof = base64.b64encode(bytes(a ^ b for a, b in zip(client_key, sig))).decode()
                self.send(message(b"p", f"{without_proof},p={proof}".encode()))
            elif code == 12:
                pass

    def query(self, sql):
        self.send(message(b"Q", cstr(sql)))

    def close(self):
        try:
            self.send(message(b"X", b""))
        except OSError:
            pass
        self.sock.close()


def capture(port):
    """The server streams, by name."""
    s = {}

    # Startups, one per authentication method, and two refused ones.
    for user in ["trustuser", "pwuser", "md5user", "scramuser"]:
        c = Conn(port, user)
        assert c.login(), user
        s[f"login-{user}"] = c.log[:c.marks["ready"]]
        for name, at in c.marks.items():
            if name.startswith("after-auth-"):
                s[f"login-{user}-{name}"] = c.log[at:c.marks["ready"]]
        if user == "scramuser":
            s["scram-first"] = c.scram_first.encode()
        c.close()
    c = Conn(port, "md5user")
    assert not c.login("wrong password")
    s["login-wrong-password"] = c.log
    c.close()
    c = Conn(port, "trustuser", database="nosuchdb")
    assert not c.login()
    s["login-no-database"] = c.log
    c.close()

    c = Conn(port, "trustuser")
    assert c.login()

    def step(name, sql, tags=(b"Z",), send=None):
        c.mark(name)
        c.query(sql)
        if send is not None:
            c.until((b"G", b"Z"))
            c.send(send)
        c.until(tags)
        s[name] = c.log[c.marks[name]:len(c.log) - len(c.buf)]

    step("query-select", "SELECT 1 AS one, NULL::text AS nothing, 'x' AS x")
    step("query-error", "SELECT 1/0")
    step("query-empty", "")
    step("query-multi", "BEGIN; SELECT 2; COMMIT")
    step("set-parameter", "SET application_name = 'copyman-fuzz'")
    step("notify", "LISTEN ch; NOTIFY ch, 'payload'")
    step("copy-out-100", "COPY (SELECT generate_series(1,100)) TO STDOUT")
    step("copy-out-csv", "COPY (SELECT g, 'a,b' || g, NULL FROM generate_series(1,20) g) "
                         "TO STDOUT (FORMAT csv, HEADER)")
    step("copy-out-binary", "COPY (SELECT g, 'x' || g FROM generate_series(1,20) g) "
                            "TO STDOUT (FORMAT binary)")
    step("setup-f", "CREATE FUNCTION f(i int) RETURNS int LANGUAGE plpgsql AS $$ BEGIN "
                    "IF i = 50 THEN RAISE NOTICE 'halfway at %', i; END IF; RETURN i; END $$")
    step("copy-out-notice", "COPY (SELECT f(g) FROM generate_series(1,100) g) TO STDOUT")
    step("copy-out-error", "COPY (SELECT 1/(50-g) FROM generate_series(1,100) g) TO STDOUT")
    step("setup-t", "CREATE TEMP TABLE t (x int)")
    rows = b"".join(message(b"d", f"{i}\n".encode()) for i in range(1, 11))
    step("copy-in-done", "COPY t FROM STDIN", send=rows + message(b"c", b""))
    step("copy-in-bad-data", "COPY t FROM STDIN",
         send=message(b"d", b"1\nnot a number\n") + message(b"c", b""))
    step("copy-in-fail", "COPY t FROM STDIN", send=message(b"f", cstr("copyman: abandoned")))
    step("copy-out-as-query", "COPY (SELECT 1) TO STDOUT")
    c.mark("fatal")
    c.query("SELECT pg_terminate_backend(pg_backend_pid())")
    c.until(())
    s["fatal"] = c.log[c.marks["fatal"]:]
    c.close()
    return s


# -- The seeds ----------------------------------------------------------------------------------------

STAGES = ["Startup", "Authenticating", "ScramFirst", "ScramFinal", "Ready", "Query", "CopyOut",
          "CopyIn", "Draining", "CopyInEnding", "CopyInPending", "CopyOutPending"]
AUTHS = ["Trust", "Cleartext", "Md5", "Scram"]
CHUNKINGS = [bytes(8), bytes([1] * 8), bytes([7, 3, 0, 64, 5, 1, 200, 2])]


def after_first(stream, tag):
    """`stream` from just after its first message with `tag` (the COPY response)."""
    i = 0
    while i + 5 <= len(stream):
        (length,) = struct.unpack("!I", stream[i + 1:i + 5])
        if stream[i:i + 1] == tag:
            return stream[i + 1 + length:]
        i += 1 + length
    raise ValueError(f"no {tag!r} message")


def only(stream, tags):
    """The messages of `stream` whose tag is in `tags`."""
    out, i = b"", 0
    while i + 5 <= len(stream):
        (length,) = struct.unpack("!I", stream[i + 1:i + 5])
        if stream[i] in tags:
            out += stream[i:i + 1 + length]
        i += 1 + length
    return out


def write(target, name, data):
    d = os.path.join(FUZZ, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"seed-{name}"), "wb") as f:
        f.write(data)


def stream_seed(chunks, param, stream):
    return chunks + struct.pack("<H", param) + stream


def session_seed(chunks, stage, auth, param, stream):
    return chunks + bytes([STAGES.index(stage), AUTHS.index(auth), param]) + stream


def write_seeds(s):
    for target in ["framer", "lines", "session"]:
        shutil.rmtree(os.path.join(FUZZ, "corpus", target), ignore_errors=True)
    copies = {name: after_first(s[name], b"H") for name in
              ["copy-out-100", "copy-out-csv", "copy-out-binary", "copy-out-notice",
               "copy-out-error"]}
    for i, (name, stream) in enumerate(copies.items()):
        for j, chunks in enumerate(CHUNKINGS):
            param = (i * 97 + j * 31) * 7
            write("framer", f"{name}-{j}", stream_seed(chunks, param, stream))
            write("lines", f"{name}-{j}", stream_seed(chunks, param % 8, stream))
    write("lines", "rows", stream_seed(CHUNKINGS[2], 3, b"1\n22\n\n333\n4444"))

    def session(name, stage, auth, stream, param=0, chunks=2):
        write("session", f"{stage.lower()}-{name}",
              session_seed(CHUNKINGS[chunks], stage, auth, param, stream))

    logins = {"Trust": "trustuser", "Cleartext": "pwuser", "Md5": "md5user", "Scram": "scramuser"}
    codes = {"Trust": 0, "Cleartext": 3, "Md5": 5, "Scram": 10}
    for auth, user in logins.items():
        session(user, "Startup", auth, s[f"login-{user}"], chunks=1)
        session(user, "Authenticating", auth, s[f"login-{user}-after-auth-{codes[auth]}"])
    session("wrong-password", "Startup", "Md5", s["login-wrong-password"])
    session("no-database", "Startup", "Trust", s["login-no-database"])
    # The server-first-message after `r=` and the capture's client nonce (24 characters): the
    # server's nonce, salt and iterations; then the server-final and the rest of the startup.
    suffix = s["scram-first"][2 + 24:]
    session("capture", "ScramFirst", "Scram", suffix + s["login-scramuser-after-auth-11"],
            param=min(len(suffix), 255))
    session("capture", "ScramFinal", "Scram", s["login-scramuser-after-auth-11"])
    for name in ["notify", "set-parameter", "fatal"]:
        # What a server may send an idle session: notifications, parameters, notices, errors.
        session(name, "Ready", "Trust", only(s[name], b"ASNE"))
    for name in ["query-select", "query-error", "query-empty", "query-multi", "fatal",
                 "copy-out-as-query"]:
        session(name, "Query", "Md5", s[name])
    for name, stream in copies.items():
        session(name, "CopyOut", "Trust", stream, chunks=2)
        session(name, "Draining", "Cleartext", stream, param=90)
    session("copy-out-100-whole", "CopyOut", "Trust", copies["copy-out-100"], chunks=0)
    for name in ["copy-in-done", "copy-in-bad-data", "copy-in-fail"]:
        stream = after_first(s[name], b"G")
        # copy_done() first (the server answers it), or at the end (after the server's error).
        session(name, "CopyIn", "Trust", stream, param=1 if name == "copy-in-done" else 255)
        session(name, "CopyInEnding", "Trust", stream)
        session(name, "CopyInPending", "Trust", s[name])
    session("copy-out-as-copy-in", "CopyInPending", "Trust", s["copy-out-100"])
    session("copy-out-100", "CopyOutPending", "Trust", s["copy-out-100"])
    session("copy-in-as-copy-out", "CopyOutPending", "Trust", s["copy-in-done"])
    session("query-select", "CopyOutPending", "Trust", s["query-select"])


def main():
    cluster = Cluster()
    try:
        subprocess.run(["psql", "-h", cluster.dir, "-p", str(cluster.port), "-U", "postgres",
                        "-d", "postgres", "-q", "-v", "ON_ERROR_STOP=1", "-c",
                        "CREATE ROLE trustuser LOGIN; "
                        f"CREATE ROLE pwuser LOGIN PASSWORD '{PASSWORD}'; "
                        "SET password_encryption = 'md5'; "
                        f"CREATE ROLE md5user LOGIN PASSWORD '{PASSWORD}'; "
                        "SET password_encryption = 'scram-sha-256'; "
                        f"CREATE ROLE scramuser LOGIN PASSWORD '{PASSWORD}'; "
                        "GRANT CREATE ON SCHEMA public TO trustuser"], check=True)
        streams = capture(cluster.port)
    finally:
        cluster.stop()
    write_seeds(streams)
    total = sum(os.path.getsize(os.path.join(dp, f))
                for dp, _, fs in os.walk(os.path.join(FUZZ, "corpus")) for f in fs)
    print(f"wrote {len(streams)} captured streams as seeds, {total} bytes in fuzz/corpus")


if __name__ == "__main__":
    main()

"""Clients the project did not write, for examples/demo_test.sh: Python's asyncio.

    python3 demo_clients.py echo PORT IDLE_SECONDS
    python3 demo_clients.py chat PORT

Exits non-zero with a message on the first thing that is not as expected.
"""
import asyncio
import sys


async def echo_client(port, n, lines):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for i in range(lines):
        line = f"client {n} line {i} {'x' * (i % 50)}\n".encode()
        writer.write(line)
        await writer.drain()
        back = await asyncio.wait_for(reader.readline(), 10)
        if back != line:
            raise SystemExit(f"echo: sent {line!r}, got {back!r}")
    writer.write_eof()
    rest = await asyncio.wait_for(reader.read(), 10)
    if rest != b"":
        raise SystemExit(f"echo: bytes after half-close: {rest!r}")
    writer.close()


async def idle_client(port, idle_seconds):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    loop = asyncio.get_running_loop()
    start = loop.time()
    data = await asyncio.wait_for(reader.read(), idle_seconds + 20)
    waited = loop.time() - start
    if data != b"":
        raise SystemExit(f"idle: unexpected data {data!r}")
    if waited < idle_seconds * 0.9:
        raise SystemExit(f"idle: dropped after {waited:.2f}s, before the {idle_seconds}s timeout")
    writer.close()
    return waited


async def echo(port, idle_seconds):
    idle = asyncio.create_task(idle_client(port, idle_seconds))
    await asyncio.gather(*(echo_client(port, n, 100) for n in range(20)))
    waited = await idle
    print(f"asyncio echo: 20 clients x 100 lines echoed; idle client dropped after {waited:.1f}s")


async def expect(reader, text):
    seen = b""
    while text.encode() not in seen:
        line = await asyncio.wait_for(reader.readline(), 10)
        if not line:
            raise SystemExit(f"chat: connection ended before {text!r}; saw {seen!r}")
        seen += line


async def chat(port):
    clients = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
    (ar, aw), (br, bw), (cr, cw) = clients
    aw.write(b"/nick ann\n")
    await expect(ar, "* you are now ann")
    bw.write(b"/nick ben\n")
    await expect(br, "* you are now ben")
    aw.write(b"hello from asyncio\n")
    await expect(br, "<ann> hello from asyncio")
    await expect(cr, "<ann> hello from asyncio")
    bw.write(b"/quit\n")
    await expect(br, "* bye")
    if await asyncio.wait_for(br.read(), 10) != b"":
        raise SystemExit("chat: /quit did not close the connection")
    await expect(ar, "* ben left")
    for _, w in clients:
        w.close()
    print("asyncio chat: nick, broadcast and quit seen by three clients")


def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode == "echo":
        asyncio.run(echo(port, float(sys.argv[3])))
    else:
        asyncio.run(chat(port))


if __name__ == "__main__":
    main()

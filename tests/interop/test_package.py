#!/usr/bin/python3
"""The drunc_zmq Python package (python/) against the real drunc-broker: the
Client's commands, errors and pipelining, the Subscriber's topics and gap
detection, ProcessTable ("Joining late"), follow_logs, the ps table next to
drunc-pm's, the asyncio variants, CURVE refusals and the drop-in
ProcessManagerDriver (test_pip_install.py installs the package).

Usage: /usr/bin/python3 tests/interop/test_package.py BUILD_DIR [unittest options]

Every wait has a deadline and waits on something (a reply, an event, a
process's end), never a fixed sleep.
"""

import asyncio
import glob
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import uuid as uuidlib

from broker_process import SOURCE_DIR, BrokerProcess, setup_paths

BUILD_DIR = setup_paths(sys.argv)

import zmq  # noqa: E402
import zmq.auth  # noqa: E402

import drunc_zmq  # noqa: E402
from drunc_zmq import (BadRequestFormat, Client, DruncExceptionThrown, HandshakeError, NotImplementedCommand,  # noqa: E402
                       ProcessTable, ResponseError, Subscriber, follow_logs, format_table, pb, topic)
from drunc_zmq.aio import AsyncClient, AsyncSubscriber  # noqa: E402
from drunc_zmq.driver import ProcessManagerDriver  # noqa: E402

BROKER = os.path.join(BUILD_DIR, "broker", "drunc-broker")
DRUNC_PM = os.path.join(BUILD_DIR, "client", "drunc-pm")
TIMEOUT = 15.0
EPHEMERAL = {"control_endpoint": "tcp://127.0.0.1:*", "events_endpoint": "tcp://127.0.0.1:*"}


class BrokerTestCase(unittest.TestCase):
    SETTINGS = {"name": "py-package", "session": "pkg-broker", "kill_timeout_s": 5}

    def setUp(self):
        self.directory = tempfile.mkdtemp(prefix="drunc-package-")
        self.addCleanup(shutil.rmtree, self.directory, True)
        config_path = os.path.join(self.directory, "broker.json")
        with open(config_path, "w") as file:
            json.dump(dict(EPHEMERAL, **self.SETTINGS), file)
        self.broker = BrokerProcess(BROKER, config_path)
        self.addCleanup(self.broker.stop)
        self.context = zmq.Context()
        self.addCleanup(self.context.destroy, 0)
        self.client = self.make_client()
        self.session = "pkg-" + uuidlib.uuid4().hex[:8]

    def make_client(self, **options):
        client = Client(self.broker.control, context=self.context, timeout=TIMEOUT, **options)
        self.addCleanup(client.close)
        return client

    def subscriber(self, *prefixes, **options):
        feed = Subscriber.from_client(self.client, *prefixes, **options)
        self.addCleanup(feed.close)
        return feed

    def wait_dead(self, feed, uuid):
        """The state event saying the process ended (feed subscribed to its state)."""
        return feed.wait_for(lambda e: e.kind == "state" and e.uuid == uuid and e.instance.status_code == pb.DEAD,
                             TIMEOUT, "the end of " + uuid)


class ClientTest(BrokerTestCase):
    def test_commands_and_results(self):
        description = self.client.describe()
        self.assertEqual((description.name, description.session), ("py-package", "pkg-broker"))
        feed = self.client.event_feed()
        self.assertEqual(feed.address, self.broker.events)

        app = self.client.boot("app", ["sleep", "60"], session=self.session, env={"A": "1"})
        self.assertIsInstance(app, pb.ProcessInstance)
        self.assertEqual(app.status_code, pb.RUNNING)
        uuid = app.uuid.uuid
        self.assertEqual(app.process_description.env["A"], "1")
        # A query may be a UUID, an exact name, keywords, or a ProcessQuery.
        for query in (uuid, "app", pb.ProcessQuery(names=["^app$"])):
            self.assertEqual([p.uuid.uuid for p in self.client.ps(query)], [uuid])
        self.assertEqual([p.uuid.uuid for p in self.client.ps(session=self.session)], [uuid])
        self.assertEqual(self.client.ps("ap"), [], "a string is an exact name, not a pattern")
        listed, position = self.client.ps_with_position()
        self.assertEqual(len(listed), 1)
        self.assertEqual(position.publisher_id, feed.publisher_id)

        restarted = self.client.restart(uuid)
        self.assertEqual((restarted.uuid.uuid, restarted.status_code), (uuid, pb.RUNNING))
        killed = self.client.kill(session=self.session)
        self.assertEqual([(p.uuid.uuid, p.status_code) for p in killed], [(uuid, pb.DEAD)])
        self.assertIn(killed[0].return_code, (131, 137))
        self.assertEqual([p.uuid.uuid for p in self.client.flush(uuid)], [uuid])
        self.assertEqual(self.client.ps(), [])

        talker = self.client.boot("talker", commands=[["echo", "one"], ["echo", "two/%"]], session=self.session)
        watcher = self.subscriber(topic("state", self.session))
        watcher.make_live(self.client)
        if self.client.ps(talker.uuid.uuid)[0].status_code != pb.DEAD:
            self.wait_dead(watcher, talker.uuid.uuid)
        logs = self.client.logs(talker.uuid.uuid, how_far=10)
        self.assertEqual(logs.text, ["one", "two/%"])
        self.assertEqual(logs.cursor, 3)
        self.assertEqual(self.client.logs(talker.uuid.uuid, how_far=1).text, ["two/%"])

        self.client.boot("sleeper", ["sleep", "60"], session=self.session)
        terminated = self.client.terminate()
        self.assertEqual(len(terminated), 2)
        self.assertTrue(all(p.status_code == pb.DEAD for p in terminated))

    def test_errors_carry_flag_and_text(self):
        with self.assertRaises(DruncExceptionThrown) as caught:
            self.client.restart(names=["^nothing-matches$"])
        error = caught.exception
        self.assertIsInstance(error, ResponseError)
        self.assertEqual((error.flag, error.flag_name, error.command), (6, "DRUNC_EXCEPTION_THROWN", "restart"))
        self.assertIn("matches 0", error.text)
        self.assertIn(error.text, str(error))

        with self.assertRaises(DruncExceptionThrown) as caught:
            self.client.ps(names=["(unclosed"])
        self.assertIn("(unclosed", caught.exception.text)

        with self.assertRaises(BadRequestFormat) as caught:
            self.client.request("kill", pb.LogRequest(how_far=3))
        self.assertEqual(caught.exception.flag, 8)
        self.assertIn("dunedaq.druncschema.ProcessQuery", caught.exception.text)

        with self.assertRaises(NotImplementedCommand) as caught:
            self.client.request("reboot-universe", pb.ProcessQuery())
        self.assertIn("reboot-universe", caught.exception.text)

        with self.assertRaises(DruncExceptionThrown):
            self.client.boot("nowhere", ["true"], session=self.session, hosts=[])
        self.assertEqual(self.client.ps(session=self.session), [])

        # The client keeps working after each of them.
        self.assertEqual(self.client.describe().name, "py-package")

    def test_timeout(self):
        silent = zmq.Context.instance().socket(zmq.ROUTER)  # accepts connections, never answers
        self.addCleanup(silent.close, 0)
        port = silent.bind_to_random_port("tcp://127.0.0.1")
        client = Client("tcp://127.0.0.1:%d" % port, timeout=0.3, context=self.context)
        self.addCleanup(client.close)
        started = time.monotonic()
        with self.assertRaises(drunc_zmq.TimeoutError) as caught:
            client.ps()
        self.assertIsInstance(caught.exception, TimeoutError)
        self.assertLess(time.monotonic() - started, 5.0)
        with self.assertRaises(drunc_zmq.TimeoutError):
            client.describe(timeout=0.2)

    def test_pipelining(self):
        # slow-to-die takes about a second to die on SIGQUIT; it says "ready" once its trap is set.
        feed = self.subscriber(topic("log", self.session))
        feed.make_live(self.client)
        script = "trap 'sleep 1; exit 3' QUIT; echo ready; while true; do sleep 0.1; done"
        slow = self.client.boot("slow-to-die", ["bash", "-c", script], session=self.session)
        feed.wait_for(lambda e: e.uuid == slow.uuid.uuid and e.line == "ready", TIMEOUT, "the ready line")

        kill = self.client.send("kill", drunc_zmq.query(slow.uuid.uuid))
        ps = self.client.send("ps", drunc_zmq.query(slow.uuid.uuid))
        describe = self.client.send("describe")
        order = list(self.client.as_completed([kill, ps, describe], timeout=TIMEOUT))
        self.assertEqual(order[-1], kill, order)
        self.assertEqual(len(order), 3)
        self.assertEqual([p.status_code for p in ps.result()], [pb.RUNNING])
        self.assertEqual([(p.status_code, p.return_code) for p in kill.result()], [(pb.DEAD, 3)])
        self.assertEqual(describe.result().name, "py-package")

        # Many in flight at once, results matched by request id.
        pendings = [self.client.send("boot", drunc_zmq.boot_request("many-%d" % i, ["true"], session=self.session))
                    for i in range(20)]
        names = [p.result().process_description.metadata.name for p in pendings]
        self.assertEqual(names, ["many-%d" % i for i in range(20)])

    def test_boot_session_file_and_table(self):
        session_file = os.path.join(self.directory, "session.json")
        with open(session_file, "w") as file:
            json.dump({"session": self.session, "env": {"RUN": "7"}, "execution_directory": self.directory,
                       "processes": [{"name": "first", "commands": [["sleep", "60"]]},
                                     {"name": "second", "commands": [["echo", "a b"], ["sleep", "60"]],
                                      "env": {"X": "y"}}]}, file)
        booted = self.client.boot_session(session_file)
        self.assertEqual([p.process_description.metadata.name for p in booted], ["first", "second"])
        self.assertEqual(booted[1].process_description.env["RUN"], "7")
        self.assertEqual(booted[1].process_description.env["X"], "y")

        for long_format in (False, True):
            args = [DRUNC_PM, "-b", self.broker.control, "ps", "-s", self.session]
            if long_format:
                args.append("--long-format")
            result = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT,
                                    env=dict(os.environ, NO_COLOR="1"), stdin=subprocess.DEVNULL)
            self.assertEqual(result.returncode, 0, result.stderr)
            ours = format_table(self.client.ps(session=self.session), long_format=long_format)
            if long_format:  # the command column's quoting may differ: compare the columns before it
                ours = "\n".join(line[:line.rfind("  ")] for line in ours.splitlines())
                theirs = "\n".join(line[:line.rfind("  ")] for line in result.stdout.splitlines())
            else:
                theirs = result.stdout
            self.assertEqual(ours.strip(), theirs.strip())
        self.client.kill(session=self.session)


class SubscriberTest(BrokerTestCase):
    def test_topic_helpers(self):
        self.assertEqual(topic(), "")
        self.assertEqual(topic("log"), "log/")
        self.assertEqual(topic("log", "run-7"), "log/run-7/")
        self.assertEqual(topic("state", "a/b%c", "x"), "state/a%2Fb%25c/x/")
        self.assertEqual(topic("log", "s", "n", "u"), "log/s/n/u")
        self.assertEqual(drunc_zmq.parse_topic("state/a%2Fb%25c/x/u"), ("state", "a/b%c", "x", "u"))
        for bad in (lambda: topic("logs"), lambda: topic("log", None, "n"), lambda: topic("", "s")):
            self.assertRaises(ValueError, bad)

    def test_encoded_names_on_the_wire(self):
        session = "odd/%session-" + uuidlib.uuid4().hex[:4]
        name = "a/b%2Fc"
        feed = self.subscriber(topic("log", session, name), topic("state", session, name))
        other = self.subscriber(topic("log", session, "a"))  # must not match "a/b%2Fc"
        feed.make_live(self.client)
        other.make_live(self.client)
        app = self.client.boot(name, ["echo", "hello"], session=session)
        event = feed.wait_for(lambda e: e.kind == "log", TIMEOUT, "the log line")
        self.assertEqual((event.session, event.name, event.uuid, event.line), (session, name, app.uuid.uuid, "hello"))
        self.assertEqual(event.topic, topic("log", session, name, app.uuid.uuid))
        self.wait_dead(feed, app.uuid.uuid)
        self.assertIsNone(other.next(0.5), "a prefix of another name matched")

    def test_iteration_with_timeouts(self):
        feed = self.subscriber(topic("log", self.session))
        feed.make_live(self.client)
        app = self.client.boot("counter", ["bash", "-c", "for i in 1 2 3 4 5; do echo $i; done"], session=self.session)
        lines = []
        for event in feed.events(timeout=TIMEOUT):
            lines.append(event.line)
            if len(lines) == 5:
                break
        self.assertEqual(lines, ["1", "2", "3", "4", "5"])
        self.assertTrue(all(e.uuid == app.uuid.uuid for e in [event]))
        started = time.monotonic()
        self.assertEqual(list(feed.events(idle=0.3)), [])
        self.assertLess(time.monotonic() - started, 5.0)
        self.assertEqual(list(feed.events(timeout=0.2)), [])

class GapTest(BrokerTestCase):
    # The broker queues at most one event per subscriber.
    SETTINGS = dict(BrokerTestCase.SETTINGS, events_high_water_mark=1)

    def test_gap_detection(self):
        """A subscriber that does not read while 200,000 lines are published (the
        broker queues at most 1 event for it) loses most of them; each event it then
        reads says how many of its topic were lost before it. (Should the socket
        buffers of some machine hold them all, a flood four times larger follows.)"""
        slow = self.subscriber(topic("log", self.session), high_water_mark=1)
        slow.make_live(self.client)
        watcher = self.subscriber(topic("state", self.session))
        watcher.make_live(self.client)
        for count in (200000, 800000):
            app = self.client.boot("flood-%d" % count, ["seq", "1", str(count)], session=self.session)
            self.wait_dead(watcher, app.uuid.uuid)
            lost_before = slow.lost
            events = list(slow.events(idle=2.0, timeout=120))
            self.assertTrue(events)
            self.assertTrue(all(e.uuid == app.uuid.uuid for e in events))
            if slow.lost > lost_before:
                break
        sequences = [e.meta.topic_sequence for e in events]
        self.assertEqual(sequences, sorted(sequences))
        self.assertGreater(slow.lost, lost_before, "nothing was lost: the test proves nothing")
        self.assertEqual(len(events) + sum(e.lost for e in events[1:]), sequences[-1] - sequences[0] + 1)
        self.assertEqual(slow.lost - lost_before, sum(e.lost for e in events))
        for event in events:
            self.assertEqual(event.line, str(event.meta.topic_sequence), "a line out of place")
        self.assertGreater(self.client.event_feed().events_dropped, 0)
        if os.environ.get("DRUNC_TEST_VERBOSE"):
            print("received %d, lost %d" % (len(events), slow.lost - lost_before), file=sys.stderr)


class JoinLateTest(BrokerTestCase):
    def test_process_table_follows_ps(self):
        sleep = ["sh", "-c", "exec sleep 300"]
        early = [self.client.boot("early-%d" % i, sleep, session=self.session).uuid.uuid for i in range(3)]
        self.client.kill(early[0])
        table = ProcessTable(self.client, session=self.session).sync()
        self.addCleanup(table.close)
        self.assertEqual(list(table.processes), early)
        self.assertEqual(table.processes[early[0]].status_code, pb.DEAD)

        self.client.kill(early[1])
        self.client.flush(early[0])
        late = self.client.boot("late-one", ["true"], session=self.session).uuid.uuid
        self.client.boot("elsewhere", ["true"], session=self.session + "-other")
        deadline = time.monotonic() + TIMEOUT
        while not (late in table.processes and table.processes[late].status_code == pb.DEAD):
            self.assertLess(time.monotonic(), deadline, "the table never saw late-one exit")
            table.update(timeout=0.5)
        fresh = {p.uuid.uuid: p for p in self.client.ps(session=self.session)}
        self.assertEqual(table.processes, fresh)
        self.assertNotIn(early[0], table.processes)
        self.assertEqual(table.processes[early[1]].status_code, pb.DEAD)
        self.client.kill(early[2])

    def test_follow_logs(self):
        # The process waits for a line on a fifo before its new lines: they come after the follow started.
        fifo = os.path.join(self.directory, "go")
        os.mkfifo(fifo)
        script = "echo old-1; echo old-2; read go < %s; for i in 1 2 3; do echo new-$i; done" % shlex.quote(fifo)
        watcher = self.subscriber(topic("log", self.session))
        watcher.make_live(self.client)
        app = self.client.boot("talker", ["bash", "-c", script], session=self.session)
        watcher.wait_for(lambda e: e.line == "old-2", TIMEOUT, "old-2")
        lines = []
        for line in follow_logs(self.client, app.uuid.uuid, idle=TIMEOUT):
            lines.append(line.line)
            if line.line == "old-2":
                with open(fifo, "w") as writer:
                    writer.write("go\n")
        self.assertEqual(lines, ["old-1", "old-2", "new-1", "new-2", "new-3"])
        # A process already dead: its lines, and the end.
        self.assertEqual([line.line for line in follow_logs(self.client, app.uuid.uuid, idle=TIMEOUT)], lines)


class AsyncTest(BrokerTestCase):
    def test_async_client_and_subscriber(self):
        async def scenario():
            async with AsyncClient(self.broker.control, timeout=TIMEOUT) as client:
                feed = AsyncSubscriber(self.broker.events, topic("state", self.session), "bcast/")
                try:
                    while True:  # live once one of describe's broadcasts arrives
                        await client.describe()
                        event = await feed.next(0.5)
                        if event is not None:
                            break
                    feed.unsubscribe("bcast/")
                    booted, listed = await asyncio.gather(
                        client.boot("async-app", ["true"], session=self.session), client.ps())
                    self.assertEqual(booted.process_description.metadata.name, "async-app")
                    async for event in feed.events(idle=TIMEOUT):
                        if event.kind == "state" and event.transition == "exited":
                            self.assertEqual(event.uuid, booted.uuid.uuid)
                            break
                    with self.assertRaises(DruncExceptionThrown):
                        await client.restart(names=["^none$"])
                    results = await asyncio.gather(*[client.ps(session=self.session) for _ in range(10)])
                    self.assertEqual([len(r) for r in results], [1] * 10)
                finally:
                    feed.close()
        asyncio.run(scenario())


class CurveTest(unittest.TestCase):
    def test_refused_key_fails_at_once(self):
        directory = tempfile.mkdtemp(prefix="drunc-package-curve-")
        self.addCleanup(shutil.rmtree, directory, True)
        keys, clients = os.path.join(directory, "keys"), os.path.join(directory, "clients")
        os.mkdir(keys)
        os.mkdir(clients)
        _, server_secret = zmq.auth.create_certificates(keys, "server")
        os.chmod(server_secret, 0o600)
        alice_public, alice_secret = zmq.auth.create_certificates(keys, "alice", {"user": "alice", "role": "admin"})
        os.chmod(alice_secret, 0o600)
        with open(alice_public) as source, open(os.path.join(clients, "alice.key"), "w") as target:
            target.write(source.read().replace("metadata\n", 'metadata\n    user = "alice"\n    role = "admin"\n', 1))
        _, mallory_secret = zmq.auth.create_certificates(keys, "mallory")
        os.chmod(mallory_secret, 0o600)
        config = os.path.join(directory, "broker.json")
        with open(config, "w") as file:
            json.dump(dict(EPHEMERAL, security={"mode": "curve", "server_certificate": server_secret,
                                                "client_certificates": clients}), file)
        broker = BrokerProcess(BROKER, config)
        self.addCleanup(broker.stop)
        server_public = os.path.join(keys, "server.key")

        with Client(broker.control, certificate=alice_secret, server_key=server_public, timeout=TIMEOUT) as alice:
            self.assertEqual(alice.token.user_name, "", "with CURVE the certificate names the user")
            self.assertEqual(alice.event_feed().security_mode, "curve")
            app = alice.boot("curved", ["sleep", "60"], session="c")
            with Subscriber.from_client(alice, topic("state", "c")) as feed:
                feed.make_live(alice)
                alice.kill(app.uuid.uuid)
                event = feed.wait_for(lambda e: e.transition == "killed", TIMEOUT, "the killed event")
                self.assertEqual(event.uuid, app.uuid.uuid)

        with Client(broker.control, certificate=mallory_secret, server_key=server_public, timeout=TIMEOUT) as mallory:
            started = time.monotonic()
            with self.assertRaises(HandshakeError) as caught:
                mallory.describe()
            self.assertLess(time.monotonic() - started, TIMEOUT / 2, "the refusal waited for the timeout")
            self.assertEqual((caught.exception.event, caught.exception.value), ("EVENT_HANDSHAKE_FAILED_AUTH", 400))
            self.assertIn("refused this key", str(caught.exception))


class DriverTest(BrokerTestCase):
    """drunc-side code, as it calls upstream's ProcessManagerDriver, with its own
    generated classes (here: protoc's output for proto/ as upstream lays it out,
    top-level `druncschema`)."""

    def upstream_classes(self):
        out = os.path.join(self.directory, "upstream")
        os.mkdir(out)
        proto = os.path.join(SOURCE_DIR, "proto")
        files = ["druncschema/%s.proto" % name for name in ("token", "generic", "request_response",
                                                            "broadcast", "process_manager")]
        subprocess.run(["protoc", "-I", proto, "--python_out=" + out, *files], check=True, timeout=TIMEOUT,
                       capture_output=True)
        sys.path.append(out)
        self.addCleanup(sys.path.remove, out)
        import importlib
        return (importlib.import_module("druncschema.process_manager_pb2"),
                importlib.import_module("druncschema.token_pb2"))

    def test_driver_methods(self):
        upstream_pm, upstream_token = self.upstream_classes()
        self.assertIsNot(upstream_pm.ProcessQuery, pb.ProcessQuery)
        token = upstream_token.Token(token="t", user_name="drunc-user")
        driver = ProcessManagerDriver(self.broker.control.replace("tcp://", ""), token)
        self.addCleanup(driver.close)

        self.assertEqual(driver.describe(timeout=TIMEOUT).name, "py-package")
        watcher = self.subscriber(topic("log", self.session, "run-control"))
        watcher.make_live(self.client)
        session_file = os.path.join(SOURCE_DIR, "config", "demo-session.json")
        # The demo session writes its logs to /tmp/SESSION_NAME.log.
        self.addCleanup(lambda: [os.unlink(path) for path in glob.glob("/tmp/%s_*.log" % glob.escape(self.session))])
        booted = list(driver.boot(session_file, "ignored", "drunc-user", self.session, log_level="INFO",
                                  override_logs=True, timeout=TIMEOUT))
        self.assertTrue(booted)
        self.assertTrue(all(len(answer.values) == 1 for answer in booted))
        names = [answer.values[0].process_description.metadata.name for answer in booted]
        self.assertIn("run-control", names)
        listed = driver.ps(upstream_pm.ProcessQuery(session=self.session), timeout=TIMEOUT)
        self.assertEqual([p.process_description.metadata.name for p in listed.values], names)
        self.assertTrue(all(p.process_description.metadata.user == "drunc-user" for p in listed.values))

        watcher.wait_for(lambda e: e.kind == "log", TIMEOUT, "a line of run-control")
        logs = driver.logs(upstream_pm.LogRequest(query=upstream_pm.ProcessQuery(names=["^run-control$"]), how_far=5))
        self.assertTrue(logs.lines)
        self.assertEqual([line.line for line in logs], [line.line for line in logs.lines])

        restarted = driver.restart(upstream_pm.ProcessQuery(names=["^run-control$"]))
        self.assertEqual([p.status_code for p in restarted.values], [pb.RUNNING])
        killed = driver.kill(upstream_pm.ProcessQuery(names=["^readout-01$"]))
        self.assertEqual([p.status_code for p in killed.values], [pb.DEAD])
        flushed = driver.flush(upstream_pm.ProcessQuery(names=["^readout-01$"]))
        self.assertEqual(len(flushed.values), 1)
        with self.assertRaises(ResponseError) as caught:
            driver.restart(upstream_pm.ProcessQuery(names=["^readout-01$"]))
        self.assertEqual(caught.exception.flag_name, "DRUNC_EXCEPTION_THROWN")
        terminated = driver.terminate()
        self.assertEqual(len(terminated.values), len(names) - 1)
        self.assertTrue(all(p.status_code == pb.DEAD for p in terminated.values))

        # dummy_boot, as upstream's, runs in the current directory and writes its logs there.
        self.addCleanup(os.chdir, os.getcwd())
        os.chdir(self.directory)
        dummies = list(driver.dummy_boot("drunc-user", self.session, n_processes=2, sleep=0, n_sleeps=1))
        self.assertEqual([d.values[0].process_description.metadata.name for d in dummies],
                         ["dummy_boot_0", "dummy_boot_1"])
        driver.terminate()


if __name__ == "__main__":
    unittest.main(verbosity=2)

#!/usr/bin/python3
"""Second-language client of drunc-zmq: the real drunc-broker, driven from
Python with the drunc_zmq package (python/), whose Client and Subscriber
speak drunc-pm/1 over a plain ZeroMQ DEALER and SUB socket.

Usage: /usr/bin/python3 tests/interop/test_interop.py BUILD_DIR [unittest options]

Only the standard library, pyzmq, google.protobuf and the drunc_zmq package are
used. Every receive has a deadline, so that a broken broker fails the test
instead of hanging it.
"""

import json
import os
import shutil
import sys
import tempfile
import time
import unittest
import uuid as uuidlib

from broker_process import BrokerProcess, boot_request, setup_paths

BUILD_DIR = setup_paths(sys.argv)

import zmq  # noqa: E402

from drunc_zmq import Client, DruncZmqError, Subscriber, unpack  # noqa: E402
from drunc_zmq.pb import events_pb2, generic_pb2, process_manager_pb2, request_response_pb2  # noqa: E402

BROKER = os.path.join(BUILD_DIR, "broker", "drunc-broker")
TYPE_PREFIX = "type.googleapis.com/"
SCHEMA = "dunedaq.druncschema."
RECEIVE_TIMEOUT = 10.0   # seconds: every single receive
EPHEMERAL = {"control_endpoint": "tcp://127.0.0.1:*", "events_endpoint": "tcp://127.0.0.1:*"}

EXECUTED_SUCCESSFULLY = request_response_pb2.EXECUTED_SUCCESSFULLY
NOT_EXECUTED_BAD_REQUEST_FORMAT = request_response_pb2.NOT_EXECUTED_BAD_REQUEST_FORMAT
RUNNING = process_manager_pb2.ProcessInstance.RUNNING
DEAD = process_manager_pb2.ProcessInstance.DEAD


def uuid_query(*uuids):
    query = process_manager_pb2.ProcessQuery()
    for value in uuids:
        query.uuids.add().uuid = value
    return query


def state_uuid(topic):
    return topic.split("/")[3] if topic.startswith("state/") and topic.count("/") == 3 else None


class Feed:
    """A package Subscriber, and the events it read, as (topic, payload, meta)."""

    def __init__(self, subscriber):
        self.subscriber = subscriber
        self.seen = []

    def close(self):
        self.subscriber.close()

    def next_event(self, deadline):
        """(topic, payload bytes, EventMeta), or None at the deadline."""
        event = self.subscriber.next(max(0.0, deadline - time.monotonic()))
        if event is None:
            return None
        triple = (event.topic, event.payload, event.meta)
        self.seen.append(triple)
        return triple

    def wait_for(self, predicate, timeout=RECEIVE_TIMEOUT, what="event"):
        deadline = time.monotonic() + timeout
        while True:
            event = self.next_event(deadline)
            if event is None:
                raise AssertionError("no %s within %.0f s; seen: %s"
                                     % (what, timeout, [(t, m.transition) for t, _, m in self.seen]))
            if predicate(*event):
                return event


# ---- Tests ---------------------------------------------------------------------------


class InteropTest(unittest.TestCase):
    # kill_timeout_s: room for slow-to-die to end by itself after SIGQUIT.
    BROKER_SETTINGS = {"name": "py-interop", "session": "interop-session", "kill_timeout_s": 5}

    def setUp(self):
        directory = tempfile.mkdtemp(prefix="drunc-interop-")
        self.addCleanup(shutil.rmtree, directory, True)
        config_path = os.path.join(directory, "broker.json")
        with open(config_path, "w") as file:
            json.dump(dict(EPHEMERAL, **self.BROKER_SETTINGS), file)
        self.broker = BrokerProcess(BROKER, config_path)
        self.addCleanup(self.broker.stop)  # runs before the rmtree above (LIFO)
        self.context = zmq.Context()
        self.addCleanup(self.context.term)  # runs after the sockets' cleanups below (LIFO)
        self.client = Client(self.broker.control, context=self.context, user="interop", token="interop-token",
                             timeout=RECEIVE_TIMEOUT)
        self.addCleanup(self.client.close)
        self.session = "py-" + uuidlib.uuid4().hex[:8]

    # -- helpers --

    def call(self, command, data=None):
        """Sends one request; returns its terminal Response (the "done" one), unchecked."""
        return self.client.send(command, data).response()

    def assertType(self, any_message, message_name):
        self.assertEqual(any_message.type_url, TYPE_PREFIX + SCHEMA + message_name)

    def assertSuccess(self, response, data_type):
        detail = ""
        if response.HasField("data") and response.data.Is(generic_pb2.PlainText.DESCRIPTOR):
            detail = unpack(response.data, generic_pb2.PlainText).text
        self.assertEqual(response.flag, EXECUTED_SUCCESSFULLY, detail)
        self.assertEqual(response.name, self.BROKER_SETTINGS["name"])
        self.assertTrue(response.HasField("data"))
        self.assertType(response.data, data_type)

    def instances(self, response):
        self.assertSuccess(response, "ProcessInstanceList")
        return list(unpack(response.data, process_manager_pb2.ProcessInstanceList).values)

    def describe(self):
        response = self.call("describe")
        self.assertSuccess(response, "Description")
        return unpack(response.data, request_response_pb2.Description)

    def subscribe_live(self, events_address, *prefixes):
        """A SUB socket whose subscription is known to be live: throwaway processes
        (`true`) are booted until one of their state events arrives on it."""
        subscriber = Feed(Subscriber(events_address, *prefixes, context=self.context))
        self.addCleanup(subscriber.close)
        deadline = time.monotonic() + 30
        warm_uuids = set()
        for attempt in range(30):
            boot = boot_request("warm-up-%d" % attempt, self.session, ["true"])
            instances = self.instances(self.call("boot", boot))
            self.assertEqual(len(instances), 1)
            warm_uuids.add(instances[0].uuid.uuid)
            attempt_deadline = min(deadline, time.monotonic() + 1.0)
            while True:
                event = subscriber.next_event(attempt_deadline)
                if event is None:
                    break
                if state_uuid(event[0]) in warm_uuids:
                    subscriber.seen.clear()
                    return subscriber
            if time.monotonic() >= deadline:
                break
        self.fail("the SUB socket on %s never received an event of %d warm-up processes"
                  % (events_address, len(warm_uuids)))

    # -- tests --

    def test_describe(self):
        description = self.describe()
        self.assertEqual(description.type, "process_manager")
        self.assertEqual(description.name, "py-interop")
        self.assertEqual(description.session, "interop-session")
        commands = {command.name: command for command in description.commands}
        self.assertEqual(set(commands), {"describe", "boot", "terminate", "restart", "kill", "flush", "ps", "logs"})
        self.assertEqual(list(commands["boot"].data_type), [SCHEMA + "BootRequest"])
        self.assertEqual(list(commands["kill"].data_type), [SCHEMA + "ProcessQuery"])
        self.assertEqual(list(commands["logs"].data_type), [SCHEMA + "LogRequest"])
        self.assertEqual(list(commands["describe"].data_type), [])
        self.assertEqual(commands["ps"].return_type, SCHEMA + "ProcessInstanceList")
        self.assertTrue(description.HasField("broadcast"))
        self.assertEqual(description.broadcast.type_url, TYPE_PREFIX + "drunc_zmq.EventFeed")
        feed = unpack(description.broadcast, events_pb2.EventFeed)
        self.assertEqual(feed.address, self.broker.events)
        self.assertEqual(feed.protocol, "drunc-pm-events/1")
        self.assertNotEqual(feed.publisher_id, 0)

    def test_response_echoes_token(self):
        token = request_response_pb2.Request().token
        token.token, token.user_name = "interop-token", "someone-else"
        (response,) = self.client.send("describe", token=token).responses()
        self.assertEqual(response.token.token, "interop-token")
        self.assertEqual(response.token.user_name, "someone-else")

    def test_boot_ps_kill_flush_with_state_events(self):
        feed = unpack(self.describe().broadcast, events_pb2.EventFeed)
        subscriber = self.subscribe_live(feed.address, "state/")
        name = "sleeper-" + uuidlib.uuid4().hex[:8]

        # boot
        response = self.call("boot", boot_request(name, self.session, ["sleep", "30"]))
        booted = self.instances(response)
        self.assertEqual(len(booted), 1)
        instance = booted[0]
        self.assertEqual(instance.status_code, RUNNING)
        uuid = instance.uuid.uuid
        self.assertRegex(uuid, r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
        metadata = instance.process_description.metadata
        self.assertEqual(metadata.hostname, "localhost")
        self.assertEqual(metadata.uuid.uuid, uuid)
        self.assertEqual(metadata.name, name)
        self.assertEqual(metadata.session, self.session)
        self.assertEqual(list(instance.process_restriction.allowed_hosts), ["localhost"])
        self.addCleanup(self._kill_quietly, uuid)

        topic = "state/%s/%s/%s" % (self.session, name, uuid)
        event_topic, payload, meta = subscriber.wait_for(
            lambda t, p, m: t == topic and m.transition == "booted", what="booted event of " + name)
        self.assertEqual(meta.publisher_id, feed.publisher_id)
        self.assertEqual(meta.generation, 1)
        self.assertGreater(meta.sequence, 0)
        self.assertGreater(meta.time_unix_ns, 0)
        event_instance = process_manager_pb2.ProcessInstance.FromString(payload)
        self.assertEqual(event_instance.uuid.uuid, uuid)
        self.assertEqual(event_instance.status_code, RUNNING)
        booted_sequence = meta.sequence

        # ps
        listed = self.instances(self.call("ps", uuid_query(uuid)))
        self.assertEqual([(i.uuid.uuid, i.status_code) for i in listed], [(uuid, RUNNING)])
        by_name = process_manager_pb2.ProcessQuery()
        by_name.names.append("^" + name + "$")
        self.assertEqual([i.uuid.uuid for i in self.instances(self.call("ps", by_name))], [uuid])

        # kill
        killed = self.instances(self.call("kill", uuid_query(uuid)))
        self.assertEqual(len(killed), 1)
        self.assertEqual(killed[0].uuid.uuid, uuid)
        self.assertEqual(killed[0].status_code, DEAD)
        self.assertIn(killed[0].return_code, (131, 137))

        _, payload, meta = subscriber.wait_for(
            lambda t, p, m: t == topic and m.transition == "killed", what="killed event of " + name)
        self.assertGreater(meta.sequence, booted_sequence)
        self.assertEqual(meta.publisher_id, feed.publisher_id)
        event_instance = process_manager_pb2.ProcessInstance.FromString(payload)
        self.assertEqual(event_instance.status_code, DEAD)
        self.assertEqual(event_instance.return_code, killed[0].return_code)

        listed = self.instances(self.call("ps", uuid_query(uuid)))
        self.assertEqual([(i.uuid.uuid, i.status_code) for i in listed], [(uuid, DEAD)])

        # flush
        flushed = self.instances(self.call("flush", uuid_query(uuid)))
        self.assertEqual([i.uuid.uuid for i in flushed], [uuid])
        subscriber.wait_for(lambda t, p, m: t == topic and m.transition == "flushed", what="flushed event")
        self.assertEqual(self.instances(self.call("ps", uuid_query(uuid))), [])

    def test_two_requests_in_flight_are_matched_by_request_id(self):
        # A process that takes about a second to die on SIGQUIT, so that the kill
        # is answered after a ps sent later on the same socket. It says "ready"
        # once its trap is set: a SIGQUIT before that would kill it at once.
        feed = unpack(self.describe().broadcast, events_pb2.EventFeed)
        subscriber = self.subscribe_live(feed.address, "state/", "log/")
        script = "trap 'sleep 1; exit 3' QUIT; echo ready; while true; do sleep 0.1; done"
        booted = self.instances(self.call(
            "boot", boot_request("slow-to-die", self.session, ["bash", "-c", script])))
        uuid = booted[0].uuid.uuid
        self.addCleanup(self._kill_quietly, uuid)
        subscriber.wait_for(lambda t, p, m: t == "log/%s/slow-to-die/%s" % (self.session, uuid)
                            and process_manager_pb2.LogLine.FromString(p).line == "ready",
                            what="the ready line of slow-to-die")

        kill_id = self.client.send("kill", uuid_query(uuid), request_id=b"\x00kill\xff").request_id
        ps_id = self.client.send("ps", uuid_query(uuid), request_id=b"p" * 255).request_id
        describe_id = self.client.send("describe", request_id=b"\x01").request_id
        order = []
        replies = {}
        while len(order) < 3:
            reply_id, more, response = self.client.receive()
            self.assertFalse(more)
            self.assertIn(reply_id, (kill_id, ps_id, describe_id))
            self.assertNotIn(reply_id, replies)
            order.append(reply_id)
            replies[reply_id] = response

        listed = self.instances(replies[ps_id])
        self.assertEqual([(i.uuid.uuid, i.status_code) for i in listed], [(uuid, RUNNING)])
        killed = self.instances(replies[kill_id])
        self.assertEqual([(i.uuid.uuid, i.status_code, i.return_code) for i in killed], [(uuid, DEAD, 3)])
        self.assertSuccess(replies[describe_id], "Description")
        # The kill waited for the process; the later requests did not wait for it.
        self.assertEqual(order[-1], kill_id, "replies arrived in order %r" % order)

    def test_wrong_any_type_is_bad_request_format(self):
        wrong = process_manager_pb2.LogRequest()
        wrong.how_far = 3
        response = self.call("kill", wrong)
        self.assertEqual(response.flag, NOT_EXECUTED_BAD_REQUEST_FORMAT)
        self.assertEqual(response.flag, 8)
        self.assertType(response.data, "PlainText")
        text = unpack(response.data, generic_pb2.PlainText).text
        self.assertIn("dunedaq.druncschema.ProcessQuery", text)
        self.assertIn("dunedaq.druncschema.LogRequest", text)

    def test_missing_data_and_garbage_body(self):
        response = self.call("ps")  # ps needs a ProcessQuery
        self.assertEqual(response.flag, NOT_EXECUTED_BAD_REQUEST_FORMAT)
        self.assertIn("dunedaq.druncschema.ProcessQuery", unpack(response.data, generic_pb2.PlainText).text)
        (response,) = self.client.send("ps", body=b"\xff\xff\xff\xff").responses()
        self.assertEqual(response.flag, NOT_EXECUTED_BAD_REQUEST_FORMAT)
        self.assertType(response.data, "PlainText")

    def test_unknown_command_is_not_implemented(self):
        response = self.call("reboot-universe", process_manager_pb2.ProcessQuery())
        self.assertEqual(response.flag, request_response_pb2.NOT_EXECUTED_NOT_IMPLEMENTED)
        self.assertIn("reboot-universe", unpack(response.data, generic_pb2.PlainText).text)

    def test_logs_stream_more_then_done(self):
        feed = unpack(self.describe().broadcast, events_pb2.EventFeed)
        subscriber = self.subscribe_live(feed.address, "state/", "log/")
        booted = self.instances(self.call(
            "boot", boot_request("talker", self.session, ["bash", "-c", "echo one; echo two; echo three"])))
        uuid = booted[0].uuid.uuid
        _, payload, _ = subscriber.wait_for(
            lambda t, p, m: state_uuid(t) == uuid and m.transition == "exited", what="exited event of talker")
        self.assertEqual(process_manager_pb2.ProcessInstance.FromString(payload).return_code, 0)
        live_lines = [process_manager_pb2.LogLine.FromString(p).line for t, p, m in subscriber.seen
                      if t == "log/%s/talker/%s" % (self.session, uuid)]
        self.assertEqual(live_lines, ["one", "two", "three"])
        log_request = process_manager_pb2.LogRequest()
        log_request.query.uuids.add().uuid = uuid
        log_request.how_far = 2
        responses = self.client.send("logs", log_request).responses()
        *lines, done = responses
        for response in lines:
            self.assertSuccess(response, "LogLine")
        self.assertEqual([unpack(r.data, process_manager_pb2.LogLine).line for r in lines], ["two", "three"])
        self.assertEqual([unpack(r.data, process_manager_pb2.LogLine).uuid.uuid for r in lines], [uuid, uuid])
        self.assertEqual(done.flag, EXECUTED_SUCCESSFULLY)
        # The final reply carries where the feed continues: the sequence of the next line.
        cursor = unpack(done.data, events_pb2.LogCursor)
        self.assertEqual(cursor.next_topic_sequence, 4)

    def test_follow_a_whole_session_from_the_feed_alone(self):
        """A monitoring tool's view: every line and every exit of a session's
        processes, in order per process, with no gap in the topic sequences."""
        events_address = unpack(self.describe().broadcast, events_pb2.EventFeed).address
        subscriber = self.subscribe_live(events_address, "log/%s/" % self.session, "state/%s/" % self.session)
        expected_codes = {}
        for index in range(3):
            name = "worker-%d" % index
            script = 'for i in $(seq 1 1000); do echo "%s line $i"; done; exit %d' % (name, index + 3)
            instances = self.instances(self.call("boot", boot_request(name, self.session, ["bash", "-c", script])))
            expected_codes[instances[0].uuid.uuid] = (name, index + 3)
        lines = {uuid: [] for uuid in expected_codes}
        sequences = {}
        exits = {}
        deadline = time.monotonic() + 60
        while len(exits) < len(expected_codes):
            event = subscriber.next_event(deadline)
            self.assertIsNotNone(event, "the feed stopped before every exit: %d of %d" % (len(exits), len(expected_codes)))
            topic, payload, meta = event
            kind, session, name, uuid = topic.split("/")
            if uuid not in expected_codes:
                continue  # a warm-up process
            self.assertEqual(sequences.get(topic, 0) + 1, meta.topic_sequence, "a gap on " + topic)
            sequences[topic] = meta.topic_sequence
            if kind == "log":
                line = process_manager_pb2.LogLine.FromString(payload)
                self.assertEqual(line.uuid.uuid, uuid)
                lines[uuid].append(line.line)
            elif meta.transition == "exited":
                self.assertNotIn(uuid, exits, "two exits for one process")
                exits[uuid] = process_manager_pb2.ProcessInstance.FromString(payload)
                self.assertEqual(len(lines[uuid]), 1000, "the exit came before every line")
        for uuid, (name, code) in expected_codes.items():
            self.assertEqual(lines[uuid], ["%s line %d" % (name, i) for i in range(1, 1001)])
            self.assertEqual(exits[uuid].status_code, DEAD)
            self.assertEqual(exits[uuid].return_code, code)

    def test_join_late_with_one_ps_and_the_events_after_it(self):
        """docs/PROTOCOL.md, "Joining late", written from the doc alone: the
        table kept from one ps and the feed equals a fresh ps after changes."""
        events_address = unpack(self.describe().broadcast, events_pb2.EventFeed).address
        sleep = ["sh", "-c", "exec sleep 300"]
        first = [self.instances(self.call("boot", boot_request("early-%d" % i, self.session, sleep)))[0].uuid.uuid
                 for i in range(3)]
        self.addCleanup(self._kill_quietly, first[0])
        self.call("kill", uuid_query(first[0]))

        subscriber = Feed(Subscriber(events_address, "state/%s/" % self.session, "bcast/", context=self.context))
        self.addCleanup(subscriber.close)
        session_query = process_manager_pb2.ProcessQuery(session=self.session)

        def take_ps():
            response = self.call("ps", session_query)
            listed = self.instances(response)
            self.assertEqual(len(response.children), 1)
            position = unpack(response.children[0].data, events_pb2.FeedPosition)
            self.assertEqual(len(position.state_sequences), len(listed))
            table = {p.uuid.uuid: p for p in listed}
            return position, table, dict(position.session_sequences)

        position, table, sessions = take_ps()
        live = False
        changed = False
        late_uuid = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            event = subscriber.next_event(time.monotonic() + 1)
            if event is None:
                if not live:
                    position, table, sessions = take_ps()
                continue
            topic, payload, meta = event
            gap = meta.publisher_id != position.publisher_id
            if not gap and meta.sequence < position.sequence:
                continue
            if not gap and not live:
                live = meta.sequence == position.sequence and topic.startswith("bcast/")
                gap = not live
            elif not gap and topic.startswith("state/"):
                instance = process_manager_pb2.ProcessInstance.FromString(payload)
                session = instance.process_description.metadata.session
                last = sessions.get(session, 0)
                if meta.session_sequence > last + 1:
                    gap = True
                elif meta.session_sequence == last + 1:
                    sessions[session] = meta.session_sequence
                    if meta.transition == "flushed":
                        del table[instance.uuid.uuid]
                    else:
                        table[instance.uuid.uuid] = instance
            if gap:
                position, table, sessions = take_ps()
                live = False
                continue
            if live and not changed:
                changed = True
                self.call("kill", uuid_query(first[1]))
                self.call("flush", uuid_query(first[0]))
                late_one = self.instances(self.call("boot", boot_request("late-one", self.session, ["true"])))
                late_uuid = late_one[0].uuid.uuid
            if changed:
                # Until the last change is final (late-one has exited), so that a later ps cannot differ.
                fresh = {p.uuid.uuid: p for p in self.instances(self.call("ps", session_query))}
                if fresh == table and late_uuid in table and table[late_uuid].status_code == DEAD:
                    break
        self.assertTrue(changed, "the subscription never proved live")
        fresh = {p.uuid.uuid: p for p in self.instances(self.call("ps", session_query))}
        self.assertEqual(table, fresh)
        self.assertNotIn(first[0], table)
        self.assertEqual(table[first[1]].status_code, DEAD)
        self.call("kill", uuid_query(first[2]))

    def _kill_quietly(self, uuid):
        if self.broker.process.poll() is None:
            try:
                self.call("kill", uuid_query(uuid))
            except DruncZmqError:
                pass


if __name__ == "__main__":
    unittest.main(verbosity=2)

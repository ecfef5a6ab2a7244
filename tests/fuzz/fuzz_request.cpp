// Fuzz target: decoding a request's body as the broker does
// (broker/broker_loop.cpp, handle_request and unpack): the last frame is parsed
// as a dunedaq.druncschema.Request, and its Any data is unpacked as the type
// each command expects (BootRequest for boot; ProcessQuery for terminate,
// restart, kill, flush and ps; LogRequest for logs). What the broker does next
// with pure code is done too: queries are compiled (CompiledQuery) and
// matched, a boot's description becomes a launch script.
//
// Input: the serialized Request, as a client sends it.
//
// Invariants: nothing but the documented errors is thrown; every string of a
// message that parsed is valid UTF-8 (Python clients refuse anything else, and
// the broker echoes names back); a message that parsed serializes to bytes
// that parse to a message with the same bytes; a description the launch-script
// builder accepts gives a script with no NUL byte (bash -c would cut it there).
#include <cstdint>
#include <string>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/stubs/logging.h>

#include "druncschema/process_manager.pb.h"
#include "druncschema/request_response.pb.h"
#include "errors.hpp"
#include "fuzz_check.hpp"
#include "launch_script.hpp"
#include "query.hpp"
#include "wire/utf8.hpp"

namespace pm = dunedaq::druncschema;
using drunc::broker::BadRequestFormat;
using drunc::broker::CompiledQuery;
using drunc::broker::DruncError;

namespace {

// As broker_loop.cpp's unpack: the Request.data of a command, or BadRequestFormat.
template <typename Message>
Message unpack(const pm::Request& request, bool optional = false) {
  Message message;
  if (!request.has_data()) {
    if (optional) return message;
    throw BadRequestFormat("Request.data is missing");
  }
  if (!request.data().Is<Message>() || request.data().type_url().rfind("type.googleapis.com/", 0) != 0)
    throw BadRequestFormat("Request.data holds " + request.data().type_url());
  if (!request.data().UnpackTo(&message)) throw BadRequestFormat("Request.data could not be parsed");
  return message;
}

// Every string field, at any depth (map entries included), is valid UTF-8.
void check_strings(const google::protobuf::Message& message) {
  const auto* reflection = message.GetReflection();
  std::vector<const google::protobuf::FieldDescriptor*> fields;
  reflection->ListFields(message, &fields);
  for (const auto* field : fields) {
    using google::protobuf::FieldDescriptor;
    if (field->type() == FieldDescriptor::TYPE_STRING) {
      if (field->is_repeated()) {
        for (int i = 0; i < reflection->FieldSize(message, field); ++i)
          FUZZ_CHECK(drunc::wire::is_valid_utf8(reflection->GetRepeatedString(message, field, i)));
      } else {
        FUZZ_CHECK(drunc::wire::is_valid_utf8(reflection->GetString(message, field)));
      }
    } else if (field->type() == FieldDescriptor::TYPE_MESSAGE) {
      if (field->is_repeated()) {
        for (int i = 0; i < reflection->FieldSize(message, field); ++i)
          check_strings(reflection->GetRepeatedMessage(message, field, i));
      } else {
        check_strings(reflection->GetMessage(message, field));
      }
    }
  }
}

// The bytes of a message, map entries in key order.
std::string deterministic_bytes(const google::protobuf::Message& message) {
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    FUZZ_CHECK(message.SerializeToCodedStream(&coded));
  }
  return bytes;
}

template <typename Message>
void check_round_trip(const Message& message) {
  const std::string bytes = deterministic_bytes(message);
  Message again;
  FUZZ_CHECK(again.ParseFromString(bytes));
  FUZZ_CHECK(deterministic_bytes(again) == bytes);
}

void use_query(const pm::ProcessQuery& query, const pm::ProcessMetadata& metadata) {
  check_strings(query);
  try {
    const CompiledQuery compiled(query);
    if (compiled.empty()) FUZZ_CHECK(!compiled.only_uuids());
    (void)compiled.matches("3f1c2a4e-0000-4000-8000-000000000000", metadata);
    for (const auto& uuid : compiled.uuids()) FUZZ_CHECK(compiled.matches(uuid, metadata));
  } catch (const DruncError&) {
    // a name that is not a valid regular expression
  }
}

template <typename Message, typename Use>
void try_unpack(const pm::Request& request, bool optional, Use use) {
  try {
    const auto message = unpack<Message>(request, optional);
    check_strings(message);
    check_round_trip(message);
    use(message);
  } catch (const BadRequestFormat&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // protobuf logs every invalid UTF-8 string it refuses: quiet, and much faster.
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  pm::Request request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
  check_strings(request);
  check_round_trip(request);

  pm::ProcessMetadata metadata;  // the process a query is matched against
  metadata.set_name(request.token().token());
  metadata.set_user(request.token().user_name());
  metadata.set_session(request.token().user_name());

  // boot
  try_unpack<pm::BootRequest>(request, false, [](const pm::BootRequest& boot) {
    drunc::workers::Incarnation incarnation{"3f1c2a4e-0000-4000-8000-000000000000", 1, "localhost",
                                            "2024-01-01 00:00:00 +0000"};
    try {
      const auto script = drunc::workers::build_launch_script(boot.process_description(), incarnation);
      FUZZ_CHECK(script.find('\0') == std::string::npos);
    } catch (const drunc::workers::InvalidDescription&) {
    }
  });
  // terminate (query optional, ignored but well-formed); restart, kill, flush, ps
  try_unpack<pm::ProcessQuery>(request, true, [](const pm::ProcessQuery&) {});
  try_unpack<pm::ProcessQuery>(request, false, [&](const pm::ProcessQuery& query) { use_query(query, metadata); });
  // logs
  try_unpack<pm::LogRequest>(request, false, [&](const pm::LogRequest& logs) { use_query(logs.query(), metadata); });
  return 0;
}

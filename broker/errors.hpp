// Every error a request can end in, and the one mapping to a ResponseFlag.
// Whatever a handler throws, the request gets exactly one terminal reply.
#pragma once

#include <stdexcept>

#include "druncschema/request_response.pb.h"

namespace drunc::broker {

// Request.data missing, unparseable, or of the wrong Any type.
class BadRequestFormat : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A command this broker does not know.
class NotImplemented : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The request was understood but cannot be carried out: a query that must
// match one process and does not, no allowed host, a boot that failed.
class DruncError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The caller's key, role or sessions do not allow the request; nothing was done.
class NotAuthorised : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Anything else is UNHANDLED_EXCEPTION_THROWN.
inline dunedaq::druncschema::ResponseFlag flag_for(const std::exception& error) {
  using dunedaq::druncschema::ResponseFlag;
  if (dynamic_cast<const BadRequestFormat*>(&error)) return ResponseFlag::NOT_EXECUTED_BAD_REQUEST_FORMAT;
  if (dynamic_cast<const NotImplemented*>(&error)) return ResponseFlag::NOT_EXECUTED_NOT_IMPLEMENTED;
  if (dynamic_cast<const NotAuthorised*>(&error)) return ResponseFlag::NOT_EXECUTED_NOT_AUTHORISED;
  if (dynamic_cast<const DruncError*>(&error)) return ResponseFlag::DRUNC_EXCEPTION_THROWN;
  return ResponseFlag::UNHANDLED_EXCEPTION_THROWN;
}

}  // namespace drunc::broker

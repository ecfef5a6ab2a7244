// A backend defined in the test tree, registered through the same table
// mechanism as the real ones (workers/backend.hpp), to prove the seam: the
// broker boots and kills its processes without a line of broker/ knowing it.
//
// It serves "PREFIX NAME" hosts ("spawn:anything"; backends.spawn.prefix,
// default "spawn:") on one worker thread, "spawn". It runs the description's
// first executable with its arguments and env directly (posix_spawn: no
// shell, no launch script) in a process group of its own, streams its output
// lines, and on Kill sends SIGQUIT to the group, SIGKILL after the timeout.
#pragma once

#include "backend.hpp"

namespace test {

drunc::workers::BackendType spawn_backend_type();

}  // namespace test

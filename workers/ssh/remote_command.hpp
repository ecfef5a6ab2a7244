// The command an SSH channel executes to run a launch script on a remote host.
//
// sshd hands the command to the login shell; it starts a bash that:
//   - runs the launch script in a process group of its own, and
//     says its pid on stderr first: "DRUNC-PID <pid>";
//   - reads signal names from the channel's stdin ("QUIT", "KILL", ...) and
//     sends them to that process group: kill needs no extra channel;
//   - kills the group when stdin ends: the connection dropped or the broker
//     died, so nothing is left running unmanaged;
//   - when the script ends, waits up to 2 s for the rest of the group (tee
//     draining the output), kills what is left, and exits with the script's
//     status (128+N if a signal N ended it).
#pragma once

#include <string>
#include <string_view>

namespace drunc::workers {

inline constexpr std::string_view kRemotePidPrefix = "DRUNC-PID ";

std::string remote_command(const std::string& launch_script);

// Text as one single-quoted word that any login shell (sh, bash, zsh, tcsh,
// fish) passes on unchanged and bash's `printf %b` turns back into the text.
std::string printf_b_word(std::string_view text);

}  // namespace drunc::workers

// consumer [CONTROL_ENDPOINT]: prints the drunc-zmq version it was built
// against and, given a broker's control endpoint, the broker's describe.
#include <iostream>

#include <drunc_zmq/client.hpp>
#include <drunc_zmq/version.hpp>

int main(int argc, char** argv) {
  std::cout << "built against " << drunc::kVersionText << "\n";
  if (argc < 2) return 0;
  try {
    drunc::client::Client client(argv[1], std::chrono::seconds(10));
    const auto description = client.describe();
    std::cout << "describe: name " << description.name() << ", " << description.commands_size() << " commands\n";
  } catch (const std::exception& error) {
    std::cerr << "consumer: " << error.what() << "\n";
    return 1;
  }
  return 0;
}

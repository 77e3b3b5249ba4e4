// Precompiled header for core/: the heavy, stable headers every engine file needs.
#pragma once
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>
#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

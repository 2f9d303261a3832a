#include "nn/module.h"

namespace xg::nn {
template class Module<float>;
template class Module<double>;
template class Sequential<float>;
template class Sequential<double>;
}  // namespace xg::nn

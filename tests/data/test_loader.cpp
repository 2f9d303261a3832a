// Datasets, the DataLoader (order, shuffling, drop_last, rank shards) and the transforms.
#include <algorithm>
#include <limits>
#include <numeric>
#include <set>

#include "data/loader.h"
#include "data/mnist.h"
#include "helpers.h"

using namespace xg;
using namespace xg::data;

namespace {
/// n examples of shape [1,4,4]: example i is filled with the value i, label i % 3.
TensorDataset counting_set(std::size_t n) {
  Tensor<float> x = zeros<float>({n, 1, 4, 4});
  ops::Labels y(n);
  for (std::size_t i = 0; i < n; ++i) {
    std::fill(x.data() + i * 16, x.data() + (i + 1) * 16, static_cast<float>(i));
    y[i] = static_cast<std::int64_t>(i % 3);
  }
  return TensorDataset(std::move(x), std::move(y), 3, "counting set");
}
std::vector<std::size_t> epoch_order(DataLoader& l, std::size_t epoch, std::vector<std::size_t>* sizes = nullptr) {
  l.start_epoch(epoch);
  std::vector<std::size_t> out;
  Batch b;
  while (l.next(b)) {
    if (sizes) sizes->push_back(b.targets.size());
    for (std::size_t r = 0; r < b.targets.size(); ++r) {
      const std::size_t i = b.indices[r];
      CHECK(b.inputs.data()[r * 16] == static_cast<float>(i));  // the rows are the examples named
      CHECK(b.targets[r] == static_cast<std::int64_t>(i % 3));
      out.push_back(i);
    }
  }
  return out;
}
}  // namespace

TEST_SUITE("data") {

TEST_CASE("TensorDataset checks its inputs and labels and returns examples and batches") {
  const TensorDataset d = counting_set(5);
  CHECK(d.size() == 5);
  CHECK(d.classes() == 3);
  CHECK(d.example_shape() == Shape{1, 4, 4});
  const Example e = d.get(4);
  CHECK(shape_of(e.input) == Shape{1, 4, 4});
  CHECK(e.input.data()[0] == 4.0f);
  CHECK(e.target == 1);
  CHECK_THROWS_WITH_AS(d.get(5), doctest::Contains("counting set: example 5 is out of range"), DataError);
  CHECK_THROWS_WITH_AS(TensorDataset(zeros<float>({3, 2}), ops::Labels{0, 1}), doctest::Contains("one example per label"),
                       DataError);
  CHECK_THROWS_WITH_AS(TensorDataset(zeros<float>({2, 2}), ops::Labels{0, 3}, 3), doctest::Contains("label 3 of example 1"),
                       DataError);
  CHECK(TensorDataset(zeros<float>({2, 2}), ops::Labels{0, 4}).classes() == 5);
}

TEST_CASE("TensorDataset names a negative label plainly and refuses a label too large to count classes from") {
  // Round 3: label −1 with the class count left to infer said "outside [0, 0)"; label INT64_MAX overflowed into 2^63
  // classes (UBSan).
  CHECK_THROWS_WITH_AS(TensorDataset(zeros<float>({2, 2}), ops::Labels{0, -1}), doctest::Contains("label -1 of example 1 is negative"), DataError);
  CHECK_THROWS_WITH_AS(TensorDataset(zeros<float>({2, 2}), ops::Labels{0, std::numeric_limits<std::int64_t>::max()}),
                       doctest::Contains("is too large to count classes from"), DataError);
  CHECK_THROWS_WITH_AS(TensorDataset(zeros<float>({2, 2}), ops::Labels{0, -1}, 3), doctest::Contains("label -1 of example 1 is outside [0, 3)"), DataError);
}

TEST_CASE("a loader with a batch larger than the data yields exactly the batches it reports, even at SIZE_MAX") {
  // Round 3: batch size SIZE_MAX reported 0 batches but yielded one.
  const TensorDataset d = counting_set(5);
  for (const std::size_t b : {std::size_t{7}, std::numeric_limits<std::size_t>::max()}) {
    CAPTURE(b);
    DataLoader l(d, {.batch_size = b});
    std::vector<std::size_t> sizes;
    CHECK(epoch_order(l, 0, &sizes).size() == 5);
    CHECK(sizes == std::vector<std::size_t>{5});
    CHECK(l.batches() == 1);
    DataLoader dl(d, {.batch_size = b, .drop_last = true});
    sizes.clear();
    CHECK(epoch_order(dl, 0, &sizes).empty());
    CHECK(dl.batches() == 0);
  }
}

TEST_CASE("an unshuffled loader visits 0..n-1 in batches, the last one smaller unless drop_last") {
  const TensorDataset d = counting_set(10);
  DataLoader l(d, {.batch_size = 4});
  std::vector<std::size_t> sizes;
  std::vector<std::size_t> all(10);
  std::iota(all.begin(), all.end(), 0);
  CHECK(epoch_order(l, 0, &sizes) == all);
  CHECK(sizes == std::vector<std::size_t>{4, 4, 2});
  CHECK(l.batches() == 3);
  DataLoader dl(d, {.batch_size = 4, .drop_last = true});
  sizes.clear();
  CHECK(epoch_order(dl, 0, &sizes).size() == 8);
  CHECK(sizes == std::vector<std::size_t>{4, 4});
  CHECK(dl.batches() == 2);
  CHECK(dl.examples() == 8);
  CHECK_THROWS_AS(DataLoader(d, {.batch_size = 0}), std::invalid_argument);
  CHECK_THROWS_AS(DataLoader(d, {.batch_size = 1, .rank = 2, .world = 2}), std::invalid_argument);
}

TEST_CASE("a shuffled loader visits every example once per epoch, in a new order each epoch, the same for the same seed") {
  const TensorDataset d = counting_set(50);
  DataLoader a(d, {.batch_size = 7, .shuffle = true, .seed = 9}), b(d, {.batch_size = 7, .shuffle = true, .seed = 9});
  const auto a0 = epoch_order(a, 0), a1 = epoch_order(a, 1);
  CHECK(a0 != a1);
  CHECK(std::set<std::size_t>(a0.begin(), a0.end()).size() == 50);
  CHECK(std::set<std::size_t>(a1.begin(), a1.end()).size() == 50);
  CHECK(epoch_order(b, 0) == a0);
  CHECK(epoch_order(b, 1) == a1);
  DataLoader c(d, {.batch_size = 7, .shuffle = true, .seed = 10});
  CHECK(epoch_order(c, 0) != a0);
  // A shared generator: the loader draws from it, so its state after an epoch is the loader's.
  Rng g(9);
  DataLoader shared(d, {.batch_size = 7, .shuffle = true}, &g);
  CHECK(epoch_order(shared, 0) == a0);
  CHECK(g.state() != a.generator().state());  // `a` has drawn two epochs, g one
}

TEST_CASE("with K ranks each global batch is split into contiguous shards whose union is the one-process batch") {
  const TensorDataset d = counting_set(23);
  for (int k : {2, 3, 5}) {
    CAPTURE(k);
    DataLoader one(d, {.batch_size = 4, .shuffle = true, .seed = 1});
    one.start_epoch(0);
    std::vector<std::unique_ptr<DataLoader>> ranks;
    for (int r = 0; r < k; ++r) {
      ranks.push_back(std::make_unique<DataLoader>(d, LoaderOptions{.batch_size = 4, .shuffle = true, .seed = 1, .rank = r, .world = k}));
      ranks.back()->start_epoch(0);
    }
    Batch whole, part;
    while (one.next(whole)) {
      std::vector<std::size_t> joined;
      for (auto& l : ranks) {
        REQUIRE(l->next(part));
        CHECK(part.global_size == whole.targets.size());
        joined.insert(joined.end(), part.indices.begin(), part.indices.end());
      }
      CHECK(joined == whole.indices);
    }
    for (auto& l : ranks) CHECK_FALSE(l->next(part));
  }
}

TEST_CASE("RandomShift moves an image by whole pixels with zero fill, the same for an example whatever batch it is in") {
  Tensor<float> x = zeros<float>({1, 1, 5, 5});
  x.data()[2 * 5 + 2] = 1.0f;  // a dot in the centre
  const RandomShift shift(2, 42);
  std::vector<std::pair<int, int>> seen;
  for (std::size_t epoch = 0; epoch < 30; ++epoch) {
    Tensor<float> y = x;
    shift.apply(y, {7}, epoch);
    float sum = 0;
    int at = -1;
    for (int i = 0; i < 25; ++i) {
      sum += y.data()[i];
      if (y.data()[i] == 1.0f) at = i;
    }
    CHECK(sum == 1.0f);  // a shift of ≤ 2 keeps the centre dot inside a 5×5 image
    REQUIRE(at >= 0);
    seen.emplace_back(at / 5 - 2, at % 5 - 2);
    // The same example in another batch, at another row, on another "rank": the same shift.
    Tensor<float> batch = zeros<float>({3, 1, 5, 5});
    std::copy(x.data(), x.data() + 25, batch.data() + 50);
    shift.apply(batch, {3, 9, 7}, epoch);
    CHECK(std::equal(batch.data() + 50, batch.data() + 75, y.data()));
  }
  std::set<std::pair<int, int>> distinct(seen.begin(), seen.end());
  CHECK(distinct.size() > 5);  // it varies with the epoch
  for (auto [dy, dx] : distinct) CHECK((std::abs(dy) <= 2 && std::abs(dx) <= 2));
  Tensor<float> edge = zeros<float>({1, 1, 5, 5});
  std::fill(edge.data(), edge.data() + 25, 1.0f);
  RandomShift(0).apply(edge, {0}, 0);
  CHECK(std::all_of(edge.data(), edge.data() + 25, [](float v) { return v == 1.0f; }));
  CHECK_THROWS_AS(shift.apply(edge, {0, 1}, 0), ShapeError);
}

TEST_CASE("Normalize maps each channel to (x - mean) / std; RandomRotation by 0 degrees changes nothing") {
  Tensor<float> x = zeros<float>({2, 2, 1, 2});
  std::iota(x.data(), x.data() + 8, 0.0f);
  Normalize({1.0, 2.0}, {2.0, 4.0}).apply(x, {0, 1}, 0);
  const float expected[] = {-0.5f, 0.0f, 0.0f, 0.25f, 1.5f, 2.0f, 1.0f, 1.25f};
  for (int i = 0; i < 8; ++i) CHECK(x.data()[i] == doctest::Approx(expected[i]));
  CHECK_THROWS_AS(Normalize({0.0}, {0.0}), std::invalid_argument);
  CHECK_THROWS_AS(Normalize({0.0, 1.0, 2.0}, {1.0, 1.0, 1.0}).apply(x, {0, 1}, 0), ShapeError);
  Tensor<float> img = zeros<float>({1, 1, 6, 6});
  std::iota(img.data(), img.data() + 36, 0.0f);
  Tensor<float> same = img;
  RandomRotation(0.0, 3).apply(same, {0}, 0);
  CHECK(same == img);
  Tensor<float> turned = img;
  RandomRotation(20.0, 3).apply(turned, {0}, 0);
  CHECK(turned != img);
  CHECK_THROWS_AS(RandomRotation(200.0), std::invalid_argument);
}

TEST_CASE("the MNIST dataset is a Dataset: [1,28,28] examples in [0, 1], ten classes") {
  const Split s = load_mnist_dir(std::string(XGRAD_FIXTURES_DIR) + "/mnist-small");
  const Dataset& d = s.train;
  CHECK(d.example_shape() == Shape{1, 28, 28});
  CHECK(d.classes() == 10);
  const Batch b = d.get_batch({0, 5});
  CHECK(shape_of(b.inputs) == Shape{2, 1, 28, 28});
  CHECK(*std::max_element(b.inputs.begin(), b.inputs.end()) <= 1.0f);
  CHECK(b.targets[1] == s.train.labels()[5]);
  CHECK_THROWS_AS(d.get_batch({d.size()}), DataError);
}

TEST_CASE("split_evenly holds out evenly spaced examples, so a class-sorted set keeps every class in both parts") {
  std::vector<std::uint8_t> px(20 * 784), lb(20);
  for (std::size_t i = 0; i < 20; ++i) {
    lb[i] = static_cast<std::uint8_t>(i / 2);  // sorted by class, two of each
    px[i * 784] = static_cast<std::uint8_t>(i);
  }
  MnistDataset d(px, lb);
  const MnistDataset v = d.split_evenly(10);
  REQUIRE(v.size() == 10);
  REQUIRE(d.size() == 10);
  for (std::size_t k = 0; k < 10; ++k) {
    CHECK(v.pixels()[k * 784] == 2 * k);  // examples 0, 2, 4, …
    CHECK(v.labels()[k] == k);            // one of every class
    CHECK(d.labels()[k] == k);
  }
  CHECK_THROWS_AS(d.split_evenly(10), DataError);
}

}  // TEST_SUITE

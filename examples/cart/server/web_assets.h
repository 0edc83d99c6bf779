// The cluster web page (examples/cart/web/), compiled into cart-server so the
// binary serves it wherever it runs (cmake/EmbedFiles.cmake generates the
// table at build time; the page itself needs no build step).

#ifndef CONVERGE_EXAMPLES_CART_SERVER_WEB_ASSETS_H_
#define CONVERGE_EXAMPLES_CART_SERVER_WEB_ASSETS_H_

#include <string_view>

namespace converge::cart {

struct WebAsset {
  std::string_view name;  // "index.html"
  std::string_view content_type;
  std::string_view content;
};

// nullptr when there is no asset of that name.
const WebAsset* FindWebAsset(std::string_view name);

}  // namespace converge::cart

#endif  // CONVERGE_EXAMPLES_CART_SERVER_WEB_ASSETS_H_

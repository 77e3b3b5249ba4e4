// The scene world (see scenes.h): seeded backgrounds, 16 object classes drawn from OpenCV
// primitives, exact boxes from per-object masks, and POPE / describe / colour / count / position
// questions. Portability: random numbers come from std::mt19937_64 (its sequence is fixed by the
// standard) mapped by our own integer code, never std::*_distribution; all drawing uses integer
// coordinates and cv::LINE_8.
#include "core/scenes/scenes.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "core/common.h"
#include "core/scenes/objects.h"

namespace fs = std::filesystem;

namespace dl {

namespace {

// --- portable random numbers ---

struct Rng {
    std::mt19937_64 engine;
    explicit Rng(uint64_t seed) : engine(seed) {}
    uint64_t next() { return engine(); }
    // Uniform integer in [lo, hi] (inclusive), unbiased by rejection.
    int uniform(int lo, int hi) {
        if (hi <= lo) return lo;
        const uint64_t range = uint64_t(int64_t(hi) - int64_t(lo)) + 1;
        const uint64_t limit = UINT64_MAX - UINT64_MAX % range;
        uint64_t r;
        do r = next(); while (r >= limit);
        return lo + int(r % range);
    }
    // Index drawn with integer weights (at least one positive).
    int weighted(const std::vector<int>& weights) {
        int total = 0;
        for (int w : weights) total += w;
        int r = uniform(0, total - 1);
        for (size_t i = 0; i < weights.size(); ++i) {
            if (r < weights[i]) return int(i);
            r -= weights[i];
        }
        return int(weights.size()) - 1;
    }
};

uint64_t splitmix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

// --- classes, colours, themes ---

const std::vector<std::string> kClasses = {"house", "tree", "car",  "boat", "sun",  "cloud",    "person", "dog",
                                           "cat",   "bird", "fish", "flower", "ball", "star", "umbrella", "cup"};
// Box aspect (width / height) of each class, x100, in kClasses order.
const int kAspect100[] = {100, 75, 220, 120, 100, 180, 45, 150, 80, 140, 180, 60, 100, 100, 100, 100};
// Where a class goes on a sky/ground split: 0 ground, 1 sky, 2 water-or-ground.
const int kZone[] = {0, 0, 0, 2, 1, 1, 0, 0, 0, 1, 2, 0, 0, 1, 0, 0};

const std::vector<std::string> kColors = {"red", "green", "blue", "yellow", "orange",
                                          "purple", "white", "black", "pink", "brown"};
const cv::Scalar kColorBgr[] = {{40, 40, 215},   {40, 170, 40},  {215, 90, 30},   {30, 215, 245}, {0, 135, 255},
                                {160, 40, 140},  {250, 250, 250}, {25, 25, 25},    {190, 140, 255}, {30, 75, 135}};

const std::vector<std::string> kThemes = {"street", "park", "beach", "sky", "room", "mixed"};
const std::vector<int> kThemeWeights = {3, 3, 3, 2, 2, 1};
// Class weights per theme, in kClasses order:
//                                       house tree car boat sun cloud person dog cat bird fish flower ball star umbr cup
const std::vector<std::vector<int>> kThemeClassWeights = {
    /* street */ {5, 3, 8, 0, 1, 2, 6, 3, 2, 1, 0, 0, 1, 0, 3, 0},
    /* park   */ {1, 8, 0, 0, 2, 2, 5, 5, 2, 3, 0, 6, 4, 0, 1, 0},
    /* beach  */ {0, 0, 0, 7, 4, 3, 3, 0, 0, 3, 6, 0, 3, 1, 5, 0},
    /* sky    */ {0, 0, 0, 0, 4, 8, 0, 0, 0, 6, 0, 0, 0, 5, 1, 0},
    /* room   */ {0, 0, 0, 0, 0, 0, 2, 2, 5, 0, 0, 4, 4, 2, 1, 8},
    /* mixed  */ {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
};

int class_index(const std::string& cls) {
    for (size_t i = 0; i < kClasses.size(); ++i)
        if (kClasses[i] == cls) return int(i);
    throw Error(str_cat("scenes: unknown class '", cls, "'"));
}

int color_index(const std::string& color) {
    for (size_t i = 0; i < kColors.size(); ++i)
        if (kColors[i] == color) return int(i);
    throw Error(str_cat("scenes: unknown color '", color, "'"));
}

cv::Scalar scaled(const cv::Scalar& c, int num, int den) {
    return cv::Scalar(c[0] * num / den, c[1] * num / den, c[2] * num / den);
}

// --- drawing: every primitive goes to the image (its colour) and the mask (255) ---

struct Painter {
    cv::Mat* image = nullptr;  // CV_8UC3, may be null (placement trials draw the mask only)
    cv::Mat* mask = nullptr;   // CV_8UC1, same size
    cv::Rect box;              // target; shapes are given in 0..1000 units of it
    cv::Scalar outline;        // 1-px outline around filled shapes, so shapes read on any background

    cv::Point p(int fx, int fy) const { return {box.x + fx * box.width / 1000, box.y + fy * box.height / 1000}; }
    int sx(int f) const { return std::max(1, f * box.width / 1000); }
    int sy(int f) const { return std::max(1, f * box.height / 1000); }
    int smin(int f) const { return std::max(1, f * std::min(box.width, box.height) / 1000); }
    int thick() const { return std::max(1, std::min(box.width, box.height) / 14); }

    void poly(const std::vector<cv::Point>& pts, const cv::Scalar& fill) {
        std::vector<std::vector<cv::Point>> polys = {pts};
        if (image) {
            cv::fillPoly(*image, polys, fill, cv::LINE_8);
            cv::polylines(*image, polys, true, outline, 1, cv::LINE_8);
        }
        if (mask) {
            cv::fillPoly(*mask, polys, cv::Scalar(255), cv::LINE_8);
            cv::polylines(*mask, polys, true, cv::Scalar(255), 1, cv::LINE_8);
        }
    }
    void rect(int fx0, int fy0, int fx1, int fy1, const cv::Scalar& fill) {
        const cv::Point a = p(fx0, fy0), b = p(fx1, fy1);
        poly({a, {b.x, a.y}, b, {a.x, b.y}}, fill);
    }
    // Filled ellipse (arc from start to end degrees) centred at (fx, fy) with axes (ax, ay) units.
    void ellipse(int fx, int fy, int ax, int ay, const cv::Scalar& fill, int start = 0, int end = 360) {
        const cv::Point c = p(fx, fy);
        const cv::Size axes(sx(ax), sy(ay));
        if (image) {
            cv::ellipse(*image, c, axes, 0, start, end, fill, cv::FILLED, cv::LINE_8);
            cv::ellipse(*image, c, axes, 0, start, end, outline, 1, cv::LINE_8);
        }
        if (mask) cv::ellipse(*mask, c, axes, 0, start, end, cv::Scalar(255), cv::FILLED, cv::LINE_8);
        if (mask) cv::ellipse(*mask, c, axes, 0, start, end, cv::Scalar(255), 1, cv::LINE_8);
    }
    // Round disc of radius r (units of the box's short side).
    void disc(int fx, int fy, int r, const cv::Scalar& fill) {
        const cv::Point c = p(fx, fy);
        if (image) {
            cv::circle(*image, c, smin(r), fill, cv::FILLED, cv::LINE_8);
            cv::circle(*image, c, smin(r), outline, 1, cv::LINE_8);
        }
        if (mask) {
            cv::circle(*mask, c, smin(r), cv::Scalar(255), cv::FILLED, cv::LINE_8);
            cv::circle(*mask, c, smin(r), cv::Scalar(255), 1, cv::LINE_8);
        }
    }
    // Thick lines have round caps: endpoints are pulled inside the box by half the thickness.
    void line(cv::Point a, cv::Point b, const cv::Scalar& color, int thickness) {
        const int m = thickness / 2;
        for (cv::Point* q : {&a, &b}) {
            q->x = std::clamp(q->x, box.x + m, std::max(box.x + m, box.x + box.width - 1 - m));
            q->y = std::clamp(q->y, box.y + m, std::max(box.y + m, box.y + box.height - 1 - m));
        }
        if (image) cv::line(*image, a, b, color, thickness, cv::LINE_8);
        if (mask) cv::line(*mask, a, b, cv::Scalar(255), thickness, cv::LINE_8);
    }
    // Unfilled arc, for handles and hooks.
    void arc(int fx, int fy, int ax, int ay, int start, int end, const cv::Scalar& color, int thickness) {
        if (image) cv::ellipse(*image, p(fx, fy), cv::Size(sx(ax), sy(ay)), 0, start, end, color, thickness, cv::LINE_8);
        if (mask)
            cv::ellipse(*mask, p(fx, fy), cv::Size(sx(ax), sy(ay)), 0, start, end, cv::Scalar(255), thickness,
                        cv::LINE_8);
    }
};

// Fixed detail colours (BGR); the main body always has the object's named colour.
const cv::Scalar kWindow(235, 215, 160), kDark(45, 45, 45), kWood(30, 65, 110), kSkin(140, 185, 230);
const cv::Scalar kLeaf(40, 120, 40), kGold(20, 150, 200), kSail(215, 230, 238), kTrouser(90, 55, 40);

// cos/sin x1000 of k*45 degrees, and of the 10 star vertices (k*36 degrees, from the top).
const int kCos45[] = {1000, 707, 0, -707, -1000, -707, 0, 707};
const int kSin45[] = {0, 707, 1000, 707, 0, -707, -1000, -707};
const int kStarSin36[] = {0, 588, 951, 951, 588, 0, -588, -951, -951, -588};
const int kStarCos36[] = {1000, 809, 309, -309, -809, -1000, -809, -309, 309, 809};

void draw_class(Painter& d, int cls, const cv::Scalar& c) {
    const int t = d.thick();
    switch (cls) {
    case 0:  // house: walls in colour, dark roof, door and windows
        d.rect(110, 460, 890, 999, c);
        d.poly({d.p(0, 480), d.p(500, 0), d.p(999, 480)}, kDark);
        d.rect(420, 690, 580, 999, kWood);
        d.rect(190, 580, 340, 730, kWindow);
        d.rect(660, 580, 810, 730, kWindow);
        break;
    case 1:  // tree: wooden trunk, three-lobed crown in colour
        d.rect(420, 600, 580, 999, kWood);
        d.ellipse(300, 470, 260, 200, c);
        d.ellipse(700, 470, 260, 200, c);
        d.ellipse(500, 300, 340, 290, c);
        break;
    case 2:  // car: body and cabin in colour, windows, two dark wheels with hubs
        d.poly({d.p(200, 410), d.p(310, 90), d.p(690, 90), d.p(830, 410)}, c);
        d.rect(0, 400, 999, 790, c);
        d.poly({d.p(280, 390), d.p(350, 160), d.p(485, 160), d.p(485, 390)}, kWindow);
        d.poly({d.p(530, 390), d.p(530, 160), d.p(665, 160), d.p(750, 390)}, kWindow);
        d.ellipse(230, 790, 95, 205, kDark);
        d.ellipse(770, 790, 95, 205, kDark);
        d.ellipse(230, 790, 40, 85, kWindow);
        d.ellipse(770, 790, 40, 85, kWindow);
        break;
    case 3:  // boat: hull and main sail in colour, mast, light jib
        d.line(d.p(500, 40), d.p(500, 700), kWood, t);
        d.poly({d.p(470, 60), d.p(470, 640), d.p(120, 640)}, c);
        d.poly({d.p(530, 120), d.p(530, 640), d.p(860, 640)}, kSail);
        d.poly({d.p(0, 690), d.p(999, 690), d.p(820, 999), d.p(180, 999)}, c);
        break;
    case 4: {  // sun: disc and eight rays in colour
        d.disc(500, 500, 270, c);
        const cv::Point centre = d.p(500, 500);
        const int r0 = d.smin(340), r1 = std::max(r0, d.smin(495) - t / 2 - 1);
        for (int k = 0; k < 8; ++k)
            d.line({centre.x + r0 * kCos45[k] / 1000, centre.y + r0 * kSin45[k] / 1000},
                   {centre.x + r1 * kCos45[k] / 1000, centre.y + r1 * kSin45[k] / 1000}, c, t);
        break;
    }
    case 5:  // cloud: four puffs in colour
        d.ellipse(280, 640, 260, 280, c);
        d.ellipse(530, 420, 300, 400, c);
        d.ellipse(780, 620, 210, 260, c);
        d.ellipse(520, 760, 470, 220, c);
        break;
    case 6:  // person: head, shirt and arms in colour, trousers
        d.rect(290, 620, 475, 999, kTrouser);
        d.rect(525, 620, 710, 999, kTrouser);
        d.line(d.p(270, 310), d.p(60, 580), c, t);
        d.line(d.p(730, 310), d.p(940, 580), c, t);
        d.rect(250, 270, 750, 640, c);
        d.ellipse(500, 140, 200, 120, kSkin);
        break;
    case 7:  // dog: body, legs, tail, head in colour, dark ear and nose
        d.line(d.p(160, 430), d.p(40, 220), c, t);
        d.rect(190, 560, 300, 999, c);
        d.rect(560, 560, 670, 999, c);
        d.ellipse(440, 500, 310, 200, c);
        d.ellipse(790, 320, 170, 200, c);
        d.ellipse(920, 380, 70, 80, c);
        d.ellipse(700, 360, 60, 170, scaled(c, 3, 5));
        d.ellipse(965, 360, 30, 40, kDark);
        d.ellipse(830, 270, 25, 30, kDark);
        break;
    case 8:  // cat: sitting body, head with pointed ears, tail, in colour; gold eyes
        d.line(d.p(760, 930), d.p(960, 560), c, t);
        d.ellipse(470, 690, 330, 300, c);
        d.poly({d.p(250, 230), d.p(270, 10), d.p(430, 140)}, c);
        d.poly({d.p(570, 140), d.p(730, 10), d.p(750, 230)}, c);
        d.ellipse(500, 290, 270, 200, c);
        d.disc(400, 270, 50, kGold);
        d.disc(600, 270, 50, kGold);
        break;
    case 9:  // bird: tail, body, head in colour, darker wing, gold beak
        d.poly({d.p(170, 520), d.p(0, 380), d.p(0, 680)}, c);
        d.ellipse(450, 560, 320, 230, c);
        d.ellipse(770, 370, 150, 190, c);
        d.poly({d.p(880, 320), d.p(999, 400), d.p(880, 450)}, kGold);
        d.poly({d.p(260, 520), d.p(620, 520), d.p(360, 160)}, scaled(c, 3, 5));
        d.disc(800, 330, 40, kDark);
        break;
    case 10:  // fish: body and tail in colour, eye, fin
        d.poly({d.p(760, 500), d.p(999, 180), d.p(999, 820)}, c);
        d.ellipse(420, 500, 400, 330, c);
        d.poly({d.p(350, 220), d.p(560, 220), d.p(420, 40)}, scaled(c, 3, 5));
        d.disc(200, 430, 90, kWindow);
        d.disc(200, 430, 40, kDark);
        break;
    case 11: {  // flower: stem and leaf, six petals in colour around a gold heart
        // The head is round whatever the box: radius R from the box, petals on a ring of 0.6 R.
        const int R = std::max(3, std::min(d.box.width / 2, d.box.height * 45 / 100));
        const cv::Point centre(d.box.x + d.box.width / 2, d.box.y + R);
        d.line(centre, d.p(500, 999), kLeaf, t);
        d.ellipse(660, 780, 150, 60, kLeaf);
        static const int cos60[] = {1000, 500, -500, -1000, -500, 500};
        static const int sin60[] = {0, 866, 866, 0, -866, -866};
        const int ring = R * 6 / 10, petal = std::max(1, R * 4 / 10 - 1);
        for (int k = 0; k < 6; ++k) {
            const cv::Point pc(centre.x + ring * cos60[k] / 1000, centre.y + ring * sin60[k] / 1000);
            if (d.image) {
                cv::circle(*d.image, pc, petal, c, cv::FILLED, cv::LINE_8);
                cv::circle(*d.image, pc, petal, d.outline, 1, cv::LINE_8);
            }
            if (d.mask) {
                cv::circle(*d.mask, pc, petal, cv::Scalar(255), cv::FILLED, cv::LINE_8);
                cv::circle(*d.mask, pc, petal, cv::Scalar(255), 1, cv::LINE_8);
            }
        }
        if (d.image) {
            cv::circle(*d.image, centre, std::max(1, R * 34 / 100), kGold, cv::FILLED, cv::LINE_8);
            cv::circle(*d.image, centre, std::max(1, R * 34 / 100), d.outline, 1, cv::LINE_8);
        }
        break;
    }
    case 12:  // ball: disc in colour with a light band and seam
        d.disc(500, 500, 490, c);
        d.arc(500, 500, 490, 170, 0, 360, kWindow, std::max(1, t / 2));
        d.line(d.p(500, 10), d.p(500, 990), d.outline, 1);
        break;
    case 13: {  // star: five-pointed polygon in colour
        std::vector<cv::Point> pts;
        const cv::Point centre = d.p(500, 520);
        const int ro = d.smin(500), ri = d.smin(200);
        for (int k = 0; k < 10; ++k) {
            const int r = k % 2 == 0 ? ro : ri;
            pts.push_back({centre.x + r * kStarSin36[k] / 1000, centre.y - r * kStarCos36[k] / 1000});
        }
        d.poly(pts, c);
        break;
    }
    case 14:  // umbrella: canopy in colour, dark shaft and hook
        d.line(d.p(500, 450), d.p(500, 850), kDark, t);
        d.arc(410, 850, 90, 90, 0, 180, kDark, t);
        d.line(d.p(500, 0), d.p(500, 80), kDark, t);
        d.ellipse(500, 460, 495, 400, c, 180, 360);
        break;
    case 15:  // cup: body and handle in colour, darker rim (coffee)
        d.arc(760, 520, 190, 220, -90, 90, c, std::max(2, t));
        d.poly({d.p(100, 180), d.p(760, 180), d.p(680, 999), d.p(180, 999)}, c);
        d.ellipse(430, 180, 330, 70, scaled(c, 1, 2));
        break;
    default:
        throw Error(str_cat("scenes: no drawing for class ", cls));
    }
}

cv::Scalar outline_for(int color) { return color == 7 ? cv::Scalar(140, 140, 140) : cv::Scalar(20, 20, 20); }

// Exact [x0, y0, x1, y1) of the nonzero mask pixels; {0,0,0,0} when none.
std::array<int, 4> mask_box(const cv::Mat& mask) {
    std::vector<cv::Point> nz;
    cv::findNonZero(mask, nz);
    if (nz.empty()) return {0, 0, 0, 0};
    const cv::Rect r = cv::boundingRect(nz);
    return {r.x, r.y, r.x + r.width, r.y + r.height};
}

// --- backgrounds ---

cv::Scalar jitter(Rng& rng, const cv::Scalar& c, int amount) {
    return cv::Scalar(std::clamp(int(c[0]) + rng.uniform(-amount, amount), 0, 255),
                      std::clamp(int(c[1]) + rng.uniform(-amount, amount), 0, 255),
                      std::clamp(int(c[2]) + rng.uniform(-amount, amount), 0, 255));
}

// Vertical gradient from `top` to `bottom` over rows [y0, y1).
void gradient(cv::Mat& img, int y0, int y1, const cv::Scalar& top, const cv::Scalar& bottom) {
    const int n = std::max(1, y1 - y0 - 1);
    for (int y = y0; y < y1; ++y) {
        const int k = y - y0;
        cv::Scalar c;
        for (int ch = 0; ch < 3; ++ch) c[ch] = int(top[ch]) + (int(bottom[ch]) - int(top[ch])) * k / n;
        cv::line(img, {0, y}, {img.cols - 1, y}, c, 1, cv::LINE_8);
    }
}

void draw_sky(Rng& rng, cv::Mat& img, int y1) {
    gradient(img, 0, y1, jitter(rng, {225, 165, 95}, 15), jitter(rng, {250, 225, 195}, 8));
}

void draw_grass(Rng& rng, cv::Mat& img, int y0) {
    const cv::Scalar base = jitter(rng, {60, 165, 75}, 15);
    cv::rectangle(img, {0, y0}, {img.cols - 1, img.rows - 1}, base, cv::FILLED, cv::LINE_8);
    const int blades = img.cols * (img.rows - y0) / 120;
    for (int i = 0; i < blades; ++i) {
        const int x = rng.uniform(0, img.cols - 1), y = rng.uniform(y0 + 2, std::max(y0 + 2, img.rows - 1));
        const int shade = rng.uniform(-35, 25);
        cv::line(img, {x, y}, {x + rng.uniform(-2, 2), y - rng.uniform(2, 6)},
                 cv::Scalar(base[0] + shade, base[1] + shade, base[2] + shade), 1, cv::LINE_8);
    }
}

void draw_water(Rng& rng, cv::Mat& img, int y0) {
    gradient(img, y0, img.rows, jitter(rng, {185, 130, 50}, 12), jitter(rng, {130, 80, 20}, 12));
    const int waves = img.cols * (img.rows - y0) / 400;
    for (int i = 0; i < waves; ++i) {
        const int x = rng.uniform(0, img.cols - 1), y = rng.uniform(y0 + 3, std::max(y0 + 3, img.rows - 1));
        const int len = rng.uniform(4, 14);
        cv::ellipse(img, {x, y}, {len, 3}, 0, 200, 340, cv::Scalar(225, 190, 130), 1, cv::LINE_8);
    }
}

void draw_road(Rng& rng, cv::Mat& img, int y0) {
    const int walk = std::max(4, (img.rows - y0) / 6);
    cv::rectangle(img, {0, y0}, {img.cols - 1, y0 + walk}, jitter(rng, {175, 180, 185}, 10), cv::FILLED, cv::LINE_8);
    const cv::Scalar asphalt = jitter(rng, {85, 85, 90}, 10);
    cv::rectangle(img, {0, y0 + walk + 1}, {img.cols - 1, img.rows - 1}, asphalt, cv::FILLED, cv::LINE_8);
    const int specks = img.cols * (img.rows - y0) / 60;
    for (int i = 0; i < specks; ++i) {
        const int x = rng.uniform(0, img.cols - 1), y = rng.uniform(y0 + walk + 1, img.rows - 1);
        const int s = rng.uniform(-20, 20);
        img.at<cv::Vec3b>(y, x) = cv::Vec3b(cv::saturate_cast<uchar>(asphalt[0] + s),
                                            cv::saturate_cast<uchar>(asphalt[1] + s),
                                            cv::saturate_cast<uchar>(asphalt[2] + s));
    }
    const int lane = (y0 + walk + img.rows) / 2, dash = std::max(8, img.cols / 14);
    for (int x = rng.uniform(0, dash); x < img.cols; x += 2 * dash)
        cv::rectangle(img, {x, lane - 1}, {x + dash, lane + 1}, cv::Scalar(235, 240, 240), cv::FILLED, cv::LINE_8);
}

void draw_room(Rng& rng, cv::Mat& img, int y0) {
    const cv::Scalar wall = jitter(rng, {200, 215, 225}, 25);
    cv::rectangle(img, {0, 0}, {img.cols - 1, y0 - 1}, wall, cv::FILLED, cv::LINE_8);
    const int stripe = rng.uniform(10, 30);
    for (int x = 0; x < img.cols; x += 2 * stripe)
        cv::rectangle(img, {x, 0}, {x + stripe - 1, y0 - 1}, scaled(wall, 92, 100), cv::FILLED, cv::LINE_8);
    const cv::Scalar wood = jitter(rng, {70, 120, 170}, 20);
    cv::rectangle(img, {0, y0}, {img.cols - 1, img.rows - 1}, wood, cv::FILLED, cv::LINE_8);
    const int plank = rng.uniform(12, 24);
    for (int y = y0 + plank; y < img.rows; y += plank)
        cv::line(img, {0, y}, {img.cols - 1, y}, scaled(wood, 75, 100), 1, cv::LINE_8);
}

void draw_texture(Rng& rng, cv::Mat& img) {
    const cv::Scalar a = jitter(rng, {200, 200, 200}, 45), b = jitter(rng, {170, 170, 170}, 45);
    const int cell = rng.uniform(12, 40);
    if (rng.uniform(0, 1) == 0) {  // checkerboard
        img.setTo(a);
        for (int y = 0; y < img.rows; y += cell)
            for (int x = (y / cell) % 2 == 0 ? 0 : cell; x < img.cols; x += 2 * cell)
                cv::rectangle(img, {x, y}, {x + cell - 1, y + cell - 1}, b, cv::FILLED, cv::LINE_8);
    } else {  // diagonal stripes
        img.setTo(a);
        for (int s = -img.rows; s < img.cols; s += 2 * cell)
            cv::line(img, {s, img.rows}, {s + img.rows, 0}, b, std::max(2, cell / 2), cv::LINE_8);
    }
}

void draw_noise(Rng& rng, cv::Mat& img) {
    const cv::Scalar base = jitter(rng, {160, 160, 160}, 40);
    for (int y = 0; y < img.rows; ++y) {
        cv::Vec3b* row = img.ptr<cv::Vec3b>(y);
        for (int x = 0; x < img.cols; ++x) {
            const uint64_t r = rng.next();  // three 8-bit noise samples from one draw
            for (int ch = 0; ch < 3; ++ch)
                row[x][ch] = cv::saturate_cast<uchar>(int(base[ch]) + int((r >> (8 * ch)) & 63) - 32);
        }
    }
}

// Draws the background of `theme` and returns its kind; *horizon = sky/ground split row (0: none).
std::string draw_background(Rng& rng, int theme, cv::Mat& img, int* horizon) {
    const int h = img.rows;
    const int split = h * rng.uniform(38, 62) / 100;
    *horizon = 0;
    switch (theme) {
    case 0:
        draw_sky(rng, img, split), draw_road(rng, img, split), *horizon = split;
        return "sky+road";
    case 1:
        if (rng.uniform(0, 3) == 0) {
            draw_grass(rng, img, 0);
            return "grass";
        }
        draw_sky(rng, img, split), draw_grass(rng, img, split), *horizon = split;
        return "sky+grass";
    case 2:
        if (rng.uniform(0, 3) == 0) {
            draw_water(rng, img, 0);
            return "water";
        }
        draw_sky(rng, img, split), draw_water(rng, img, split), *horizon = split;
        return "sky+water";
    case 3:
        draw_sky(rng, img, h);
        return "sky";
    case 4:
        draw_room(rng, img, split), *horizon = split;
        return "room";
    default:
        if (rng.uniform(0, 1) == 0) {
            draw_noise(rng, img);
            return "noise";
        }
        draw_texture(rng, img);
        return "texture";
    }
}

// Top-left y range for a box of height bh whose centre should lie in the class's zone.
void zone_rows(int cls, int horizon, int height, int bh, int* lo, int* hi) {
    *lo = 0, *hi = height - bh;
    if (horizon <= 0) return;
    int z0 = 0, z1 = height;
    if (kZone[cls] == 1) z1 = horizon;
    else z0 = horizon - (kZone[cls] == 0 ? bh / 4 : 0);
    const int a = std::max(0, z0 - bh / 2), b = std::min(height - bh, z1 - bh / 2);
    if (a <= b) *lo = a, *hi = b;
}

// The fill pattern of each class (image coordinates, period 4-12 px, so every 14-px patch an
// object covers shows it): a texture cue per class, as real object classes have theirs (fur,
// bark, brick), that lets a small vision tower trained from scratch tell classes apart patch by
// patch. The cup stays plain.
bool class_pattern(int cls, int x, int y) {
    switch (cls) {
        case 0: return y % 6 < 2;                                   // house: thin horizontal stripes
        case 1: return x % 6 < 2;                                   // tree: thin vertical stripes
        case 2: return (x + y) % 6 < 2;                             // car: thin diagonal /
        case 3: return (x - y + 6 * 4096) % 6 < 2;                  // boat: thin diagonal \ .
        case 4: return x % 5 < 2 && y % 5 < 2;                      // sun: small dots
        case 5: return (x / 3 + y / 3) % 2 == 1;                    // cloud: small checks
        case 6: return x % 7 == 0 || y % 7 == 0;                    // person: grid
        case 7: return y % 10 < 4;                                  // dog: wide horizontal bands
        case 8: return x % 10 < 4;                                  // cat: wide vertical bands
        case 9: return (x + y) % 10 < 4;                            // bird: wide diagonal /
        case 10: return (x - y + 10 * 4096) % 10 < 4;               // fish: wide diagonal \ .
        case 11: return x % 8 < 3 && y % 8 < 3;                     // flower: large dots
        case 12: return (x / 6 + y / 6) % 2 == 1;                   // ball: large checks
        case 13: return x % 8 == 0 || (x + y) % 8 == 0;             // star: hatching
        case 14: return x % 4 == 0 && y % 3 != 0;                   // umbrella: fine dashes
        default: return false;                                      // cup: plain
    }
}

// Shades the pixels of the object's body (exactly its colour, inside its mask) where its class
// pattern is set: darker, or lighter for a dark colour, so the colour stays the object's.
void texture_body(cv::Mat& bgr, const cv::Mat& mask, int cls, const cv::Scalar& body) {
    const std::array<int, 4> box = mask_box(mask);
    const bool dark = std::max({body[0], body[1], body[2]}) < 80;
    const cv::Vec3b from{uchar(body[0]), uchar(body[1]), uchar(body[2])};
    cv::Vec3b to;
    for (int c = 0; c < 3; ++c) to[c] = uchar(dark ? std::min(255, int(body[c]) + 70) : int(body[c]) * 6 / 10);
    for (int y = box[1]; y < box[3]; ++y) {
        const uchar* m = mask.ptr<uchar>(y);
        cv::Vec3b* px = bgr.ptr<cv::Vec3b>(y);
        for (int x = box[0]; x < box[2]; ++x)
            if (m[x] && px[x] == from && class_pattern(cls, x, y)) px[x] = to;
    }
}

}  // namespace

const std::vector<std::string>& scene_classes() { return kClasses; }
const std::vector<std::string>& scene_colors() { return kColors; }
const std::vector<std::string>& scene_themes() { return kThemes; }

uint64_t scene_seed(uint64_t seed, int index) { return splitmix64(splitmix64(seed) ^ (uint64_t(index) * 0xD1B54A32D192ED03ull)); }

SceneObject scene_draw_object(cv::Mat& bgr, const std::string& cls, const std::string& color, const cv::Rect& target) {
    const int ci = class_index(cls), co = color_index(color);
    if (bgr.type() != CV_8UC3) throw Error("scene_draw_object: image must be CV_8UC3");
    cv::Mat mask = cv::Mat::zeros(bgr.size(), CV_8UC1);
    Painter d;
    d.image = &bgr, d.mask = &mask, d.box = target, d.outline = outline_for(co);
    draw_class(d, ci, kColorBgr[co]);
    texture_body(bgr, mask, ci, kColorBgr[co]);
    return {cls, color, mask_box(mask)};
}

Scene scene_generate(uint64_t seed, int index, int width, int height) {
    if (width < 112 || height < 112 || width > 4096 || height > 4096)
        throw Error(str_cat("scenes: size ", width, "x", height, " outside [112, 4096]"));
    Scene s;
    s.index = index, s.seed = scene_seed(seed, index), s.width = width, s.height = height;
    char name[32];
    std::snprintf(name, sizeof name, "scene_%06d.png", index);
    s.image = name;
    Rng rng(s.seed);
    const int theme = rng.weighted(kThemeWeights);
    s.theme = kThemes[theme];
    s.pixels = cv::Mat(height, width, CV_8UC3, cv::Scalar(0, 0, 0));
    int horizon = 0;
    s.background = draw_background(rng, theme, s.pixels, &horizon);

    const int wanted = rng.uniform(1, 8);
    const int short_side = std::min(width, height);
    std::vector<cv::Mat> visible;  // per placed object: its pixels not yet covered
    std::vector<int> full_area;
    cv::Mat trial(height, width, CV_8UC1);
    for (int k = 0; k < wanted; ++k) {
        const int cls = rng.weighted(kThemeClassWeights[theme]);
        const int color = rng.uniform(0, int(kColors.size()) - 1);
        for (int attempt = 0; attempt < 12; ++attempt) {
            // Size = the box's long side: small (a few 14-px patches), medium or large.
            const int bin = rng.weighted({3, 4, 3});
            const int lo = bin == 0 ? 28 : bin == 1 ? 48 : short_side * 30 / 100;
            const int hi = bin == 0 ? 48 : bin == 1 ? std::max(49, short_side * 30 / 100) : short_side * 55 / 100;
            const int size = rng.uniform(lo, hi);
            const int a = kAspect100[cls];
            int bw = a >= 100 ? size : size * a / 100, bh = a >= 100 ? size * 100 / a : size;
            bw = std::clamp(bw, 12, width - 2), bh = std::clamp(bh, 12, height - 2);
            int ylo, yhi;
            zone_rows(cls, horizon, height, bh, &ylo, &yhi);
            const cv::Rect target(rng.uniform(0, width - bw), rng.uniform(ylo, yhi), bw, bh);

            trial.setTo(0);
            Painter d;
            d.mask = &trial, d.box = target;
            draw_class(d, cls, kColorBgr[color]);
            bool ok = true;
            for (size_t j = 0; j < visible.size() && ok; ++j) {
                cv::Mat left;
                cv::bitwise_and(visible[j], ~trial, left);
                ok = 2 * cv::countNonZero(left) >= full_area[j];
            }
            if (!ok) continue;
            for (cv::Mat& v : visible) v.setTo(0, trial);
            visible.push_back(trial.clone());
            full_area.push_back(cv::countNonZero(trial));
            d.image = &s.pixels, d.outline = outline_for(color);
            d.mask = nullptr;
            draw_class(d, cls, kColorBgr[color]);
            texture_body(s.pixels, trial, cls, kColorBgr[color]);
            s.objects.push_back({kClasses[cls], kColors[color], mask_box(trial)});
            break;
        }
    }
    s.owner = cv::Mat::zeros(height, width, CV_8UC1);
    for (size_t j = 0; j < visible.size(); ++j) s.owner.setTo(cv::Scalar(double(j + 1)), visible[j]);
    return s;
}

namespace {

std::string plural(const std::string& cls) {
    if (cls == "person") return "people";
    if (cls == "fish") return "fish";
    return cls + "s";
}

std::string article(const std::string& word) {
    return std::string("aeiou").find(word[0]) != std::string::npos ? "an" : "a";
}

const char* kNumberWords[] = {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight"};

std::map<std::string, int> class_counts(const Scene& s) {
    std::map<std::string, int> n;
    for (const SceneObject& o : s.objects) ++n[o.cls];
    return n;
}

}  // namespace

std::string scene_describe(const std::vector<SceneObject>& objects) {
    std::vector<std::pair<std::string, std::string>> groups;  // (color, class) in first-appearance order
    std::vector<int> counts;
    for (const SceneObject& o : objects) {
        size_t g = 0;
        while (g < groups.size() && !(groups[g].first == o.color && groups[g].second == o.cls)) ++g;
        if (g == groups.size()) groups.push_back({o.color, o.cls}), counts.push_back(0);
        ++counts[g];
    }
    if (groups.empty()) return "There are no objects.";
    std::string out = counts[0] == 1 ? "There is " : "There are ";
    for (size_t g = 0; g < groups.size(); ++g) {
        if (g > 0) out += g + 1 == groups.size() ? " and " : ", ";
        const std::string& color = groups[g].first;
        if (counts[g] == 1) out += article(color) + " " + color + " " + groups[g].second;
        else out += std::string(kNumberWords[std::min(counts[g], 8)]) + " " + color + " " + plural(groups[g].second);
    }
    return out + ".";
}

std::vector<PopeQuestion> scene_pope_questions(const std::vector<Scene>& scenes) {
    const int nc = int(kClasses.size());
    // Set statistics: scenes containing each class, and each pair of classes.
    std::vector<std::vector<bool>> present(scenes.size(), std::vector<bool>(nc, false));
    std::vector<int> freq(nc, 0);
    std::vector<std::vector<int>> cooc(nc, std::vector<int>(nc, 0));
    for (size_t i = 0; i < scenes.size(); ++i) {
        for (const SceneObject& o : scenes[i].objects) present[i][class_index(o.cls)] = true;
        for (int a = 0; a < nc; ++a) {
            if (!present[i][a]) continue;
            ++freq[a];
            for (int b = 0; b < nc; ++b)
                if (b != a && present[i][b]) ++cooc[a][b];
        }
    }
    // The k absent classes of highest score (ties: class order).
    auto top_absent = [&](size_t i, const std::vector<long>& score, int k) {
        std::vector<int> absent;
        for (int c = 0; c < nc; ++c)
            if (!present[i][c]) absent.push_back(c);
        std::stable_sort(absent.begin(), absent.end(), [&](int a, int b) { return score[a] > score[b]; });
        absent.resize(std::min<size_t>(absent.size(), size_t(k)));
        return absent;
    };
    std::vector<std::vector<int>> positives(scenes.size()), negatives[3];
    for (auto& n : negatives) n.resize(scenes.size());
    for (size_t i = 0; i < scenes.size(); ++i) {
        Rng rng(scenes[i].seed ^ 0x504F5045ull);  // "POPE": a stream apart from the drawing's
        std::vector<int> have, absent;
        for (int c = 0; c < nc; ++c) (present[i][c] ? have : absent).push_back(c);
        const int k = std::min<int>(3, int(have.size()));
        // Partial Fisher-Yates: the first k of a shuffled list, order kept as drawn.
        for (int j = 0; j < k; ++j) std::swap(have[j], have[rng.uniform(j, int(have.size()) - 1)]);
        positives[i].assign(have.begin(), have.begin() + k);
        for (int j = 0; j < k; ++j) std::swap(absent[j], absent[rng.uniform(j, int(absent.size()) - 1)]);
        negatives[0][i].assign(absent.begin(), absent.begin() + k);
        std::vector<long> popular(freq.begin(), freq.end()), adversarial(nc, 0);
        for (int c = 0; c < nc; ++c)
            for (int p = 0; p < nc; ++p)
                if (present[i][p]) adversarial[c] += cooc[c][p];
        negatives[1][i] = top_absent(i, popular, k);
        negatives[2][i] = top_absent(i, adversarial, k);
    }
    const char* categories[] = {"random", "popular", "adversarial"};
    std::vector<PopeQuestion> out;
    for (int cat = 0; cat < 3; ++cat)
        for (size_t i = 0; i < scenes.size(); ++i)
            for (size_t j = 0; j < positives[i].size(); ++j)
                for (int yes = 1; yes >= 0; --yes) {
                    PopeQuestion q;
                    q.scene = int(i);
                    q.cls = kClasses[yes ? positives[i][j] : negatives[cat][i][j]];
                    q.text = "Is there " + article(q.cls) + " " + q.cls + " in the image?";
                    q.category = categories[cat];
                    q.label = yes == 1;
                    out.push_back(q);
                }
    return out;
}

std::vector<SceneQuestion> scene_other_questions(const Scene& s) {
    std::vector<SceneQuestion> out;
    Rng rng(s.seed ^ 0x4F54484552ull);  // "OTHER"
    out.push_back({s.index, "describe", "What objects are in this picture?", scene_describe(s.objects)});
    const std::map<std::string, int> counts = class_counts(s);
    std::vector<std::string> classes, unique;
    for (const auto& [cls, n] : counts) {
        classes.push_back(cls);
        if (n == 1) unique.push_back(cls);
    }
    auto shuffle = [&](std::vector<std::string>& v) {
        for (int j = int(v.size()) - 1; j > 0; --j) std::swap(v[j], v[rng.uniform(0, j)]);
    };
    auto object_of = [&](const std::string& cls) -> const SceneObject& {
        for (const SceneObject& o : s.objects)
            if (o.cls == cls) return o;
        throw Error("scenes: internal: class not in scene");
    };
    shuffle(unique);
    for (size_t j = 0; j < unique.size() && j < 2; ++j)
        out.push_back({s.index, "color", "What color is the " + unique[j] + "?", object_of(unique[j]).color});
    shuffle(classes);
    for (size_t j = 0; j < classes.size() && j < 2; ++j)
        out.push_back({s.index, "count", "How many " + plural(classes[j]) + " are there?",
                       std::to_string(counts.at(classes[j]))});
    // Relative position: the first pair of unique objects whose boxes do not overlap horizontally.
    bool asked = false;
    for (size_t a = 0; a < unique.size() && !asked; ++a)
        for (size_t b = 0; b < unique.size() && !asked; ++b) {
            if (a == b) continue;
            const SceneObject &x = object_of(unique[a]), &y = object_of(unique[b]);
            const char* side = x.box[2] <= y.box[0] ? "left" : y.box[2] <= x.box[0] ? "right" : nullptr;
            if (!side) continue;
            out.push_back({s.index, "position",
                           "Is the " + x.cls + " to the left or to the right of the " + y.cls + "?", side});
            asked = true;
        }
    // Absolute position: the first unique object lying inside one third of the width.
    for (const std::string& cls : unique) {
        const SceneObject& o = object_of(cls);
        const int third = s.width / 3;
        const char* where = o.box[2] <= third                              ? "left"
                            : o.box[0] >= s.width - third                  ? "right"
                            : o.box[0] >= third && o.box[2] <= s.width - third ? "middle"
                                                                            : nullptr;
        if (!where) continue;
        out.push_back({s.index, "position", "Where is the " + cls + ": left, middle or right?", where});
        break;
    }
    return out;
}

void scene_parse_size(const std::string& text, int* width, int* height) {
    int w = 0, h = 0;
    char tail = 0;
    if (std::sscanf(text.c_str(), "%dx%d%c", &w, &h, &tail) != 2)
        throw Error(str_cat("--size: expected WIDTHxHEIGHT such as 448x336, got '", text, "'"));
    if (w < 112 || h < 112 || w > 4096 || h > 4096)
        throw Error(str_cat("--size: width and height must be in [112, 4096], got ", w, "x", h));
    *width = w, *height = h;
}

std::vector<Scene> scenes_write(const ScenesArgs& args) {
    if (args.count < 1 || args.count > 1000000)
        throw Error(str_cat("--count: must be in [1, 1000000], got ", args.count));
    if (args.width < 112 || args.height < 112 || args.width > 4096 || args.height > 4096)
        throw Error(str_cat("--size: width and height must be in [112, 4096], got ", args.width, "x", args.height));
    if (args.out_dir.empty()) throw Error("--out: empty directory name");
    const fs::path dir(args.out_dir);
    std::error_code ec;
    if (fs::exists(dir) && !fs::is_directory(dir)) throw Error(str_cat("--out ", args.out_dir, ": not a directory"));
    if (fs::exists(dir) && !fs::is_empty(dir)) {
        if (!args.overwrite) throw Error(str_cat("--out ", args.out_dir, ": directory not empty (use --overwrite)"));
        // Remove only our own earlier outputs: scene_*.png and the three jsonl files.
        for (const auto& entry : fs::directory_iterator(dir)) {
            const std::string name = entry.path().filename().string();
            const bool ours = (name.rfind("scene_", 0) == 0 && entry.path().extension() == ".png") ||
                              name == "scenes.jsonl" || name == "questions.jsonl" || name == "questions_other.jsonl" ||
                              name == "instances.json";
            if (ours) fs::remove(entry.path(), ec);
        }
    }
    fs::create_directories(dir, ec);
    if (ec) throw Error(str_cat("--out ", args.out_dir, ": cannot create: ", ec.message()));

    auto open = [&](const std::string& name) {
        std::ofstream f(dir / name, std::ios::binary);
        if (!f) throw Error(str_cat((dir / name).string(), ": cannot write"));
        return f;
    };
    std::ofstream scenes_file = open("scenes.jsonl"), other_file = open("questions_other.jsonl");
    const std::vector<int> png_params = {cv::IMWRITE_PNG_COMPRESSION, 3};
    std::vector<Scene> scenes;
    int other_id = 0;
    for (int i = 0; i < args.count; ++i) {
        Scene s = scene_generate(args.seed, i, args.width, args.height);
        const std::string path = (dir / s.image).string();
        if (!cv::imwrite(path, s.pixels, png_params)) throw Error(str_cat(path, ": cannot write PNG"));
        if (args.masks) {
            const std::string mask_path = (dir / (s.image.substr(0, s.image.size() - 4) + "_mask.png")).string();
            if (!cv::imwrite(mask_path, s.owner, png_params)) throw Error(str_cat(mask_path, ": cannot write PNG"));
        }
        s.pixels.release();
        s.owner.release();
        nlohmann::json objects = nlohmann::json::array();
        for (const SceneObject& o : s.objects)
            objects.push_back({{"class", o.cls}, {"color", o.color}, {"box", o.box}});
        nlohmann::json line = {{"image", s.image},   {"width", s.width},           {"height", s.height},
                               {"index", s.index},   {"theme", s.theme},           {"background", s.background},
                               {"objects", objects}};
        scenes_file << line.dump() << "\n";
        for (const SceneQuestion& q : scene_other_questions(s)) {
            nlohmann::json qj = {{"question_id", ++other_id}, {"image", s.image}, {"text", q.text},
                                 {"answer", q.answer},        {"kind", q.kind}};
            other_file << qj.dump() << "\n";
        }
        scenes.push_back(std::move(s));
    }
    // COCO-format instances (CHAIR's ground truth, `eval --task chair --annotations`): image id =
    // index + 1, category id = class index + 1, bbox [x, y, width, height], area = box area.
    {
        nlohmann::ordered_json coco = {{"info", {{"description", "DartLens scene world"}, {"seed", args.seed}}}};
        coco["images"] = nlohmann::ordered_json::array();
        coco["annotations"] = nlohmann::ordered_json::array();
        coco["categories"] = nlohmann::ordered_json::array();
        for (size_t c = 0; c < kClasses.size(); ++c)
            coco["categories"].push_back({{"id", int(c) + 1}, {"name", kClasses[c]}, {"supercategory", "object"}});
        int ann_id = 0;
        for (const Scene& s : scenes) {
            coco["images"].push_back({{"id", s.index + 1}, {"file_name", s.image}, {"width", s.width}, {"height", s.height}});
            for (const SceneObject& o : s.objects) {
                const int w = o.box[2] - o.box[0], h = o.box[3] - o.box[1];
                coco["annotations"].push_back({{"id", ++ann_id},
                                               {"image_id", s.index + 1},
                                               {"category_id", class_index(o.cls) + 1},
                                               {"bbox", {o.box[0], o.box[1], w, h}},
                                               {"area", w * h},
                                               {"iscrowd", 0},
                                               {"color", o.color}});
            }
        }
        std::ofstream coco_file = open("instances.json");
        coco_file << coco.dump() << "\n";
        if (!coco_file) throw Error(str_cat("--out ", args.out_dir, ": write failed (instances.json)"));
    }
    std::ofstream pope_file = open("questions.jsonl");
    int pope_id = 0;
    for (const PopeQuestion& q : scene_pope_questions(scenes)) {
        nlohmann::json qj = {{"question_id", ++pope_id}, {"image", scenes[q.scene].image}, {"text", q.text},
                             {"label", q.label ? "yes" : "no"}, {"category", q.category}};
        pope_file << qj.dump() << "\n";
    }
    if (!scenes_file || !other_file || !pope_file) throw Error(str_cat("--out ", args.out_dir, ": write failed"));
    return scenes;
}

bool scene_truth_for_image(const std::string& image_path, std::vector<std::string>* classes) {
    namespace fs = std::filesystem;
    const fs::path image(image_path);
    const fs::path list = image.parent_path() / "scenes.jsonl";
    std::ifstream f(list, std::ios::binary);
    if (!f) return false;
    const std::string name = image.filename().string();
    std::string line;
    int lineno = 0;
    while (std::getline(f, line)) {
        ++lineno;
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        const std::string where = str_cat(list.string(), ":", lineno, ": ");
        nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
        if (j.is_discarded() || !j.is_object()) throw Error(where + "not a JSON object");
        if (!j.contains("image") || !j["image"].is_string()) throw Error(where + "\"image\" is missing or not a string");
        if (j["image"].get<std::string>() != name) continue;
        if (!j.contains("objects") || !j["objects"].is_array()) throw Error(where + "\"objects\" is missing or not a list");
        classes->clear();
        for (const nlohmann::json& o : j["objects"]) {
            if (!o.is_object() || !o.contains("class") || !o["class"].is_string())
                throw Error(where + "an object without a \"class\" string");
            const std::string c = o["class"].get<std::string>();
            if (std::find(classes->begin(), classes->end(), c) == classes->end()) classes->push_back(c);
        }
        return true;
    }
    return false;
}

}  // namespace dl

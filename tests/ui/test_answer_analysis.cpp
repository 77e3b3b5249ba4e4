// Unit tests of the word diff, object vocabulary and CHAIR-style counts (ui/answer_analysis.h),
// plus the patch inversion and figure table, all without widgets. Expected values are worked
// out by hand from the definitions, not taken from the code.
#include <QtTest>

#include "ui/answer_analysis.h"
#include "ui/figuremodel.h"
#include "ui/patch_info.h"

using namespace dlui;

static QString render_diff(const std::string& ref, const std::string& other) {
    auto r = split_words(ref), o = split_words(other);
    QStringList parts;
    for (const DiffPiece& p : word_diff(r, o)) {
        if (p.op == DiffOp::same) parts << QString::fromStdString(o[size_t(p.index)].text);
        if (p.op == DiffOp::added) parts << "+" + QString::fromStdString(o[size_t(p.index)].text);
        if (p.op == DiffOp::removed) parts << "-" + QString::fromStdString(r[size_t(p.index)].text);
    }
    return parts.join(' ');
}

class TestAnswerAnalysis : public QObject {
    Q_OBJECT
private slots:
    void splitNormalises() {
        auto w = split_words("  A Dog's   frisbee, (red)! -- ");
        QCOMPARE(int(w.size()), 5);
        QCOMPARE(QString::fromStdString(w[0].norm), QString("a"));
        QCOMPARE(QString::fromStdString(w[1].norm), QString("dog"));
        QCOMPARE(QString::fromStdString(w[2].text), QString("frisbee,"));
        QCOMPARE(QString::fromStdString(w[2].norm), QString("frisbee"));
        QCOMPARE(QString::fromStdString(w[3].norm), QString("red"));
        QCOMPARE(QString::fromStdString(w[4].norm), QString(""));
    }
    void diffIdentical() { QCOMPARE(render_diff("a cat on a mat", "A cat on a mat."), QString("A cat on a mat.")); }
    void diffSubstitution() {
        QCOMPARE(render_diff("a dog on the grass", "a cat on the grass"), QString("a -dog +cat on the grass"));
    }
    void diffInsertDelete() {
        QCOMPARE(render_diff("the man holds a red kite", "the man holds a kite in the sky"),
                 QString("the man holds a -red kite +in +the +sky"));
        QCOMPARE(render_diff("", "two dogs"), QString("+two +dogs"));
        QCOMPARE(render_diff("two dogs", ""), QString("-two -dogs"));
    }
    void diffIsMinimal() {
        // LCS of these is "b c e" (length 3): 2 removed + 2 added = 4 changes
        auto r = split_words("a b c d e"), o = split_words("b x c e y");
        int same = 0, changed = 0;
        for (const DiffPiece& p : word_diff(r, o)) (p.op == DiffOp::same ? same : changed)++;
        QCOMPARE(same, 3);
        QCOMPARE(changed, 4);
    }
    void vocabulary() {
        QCOMPARE(QString::fromStdString(canonical_object("dogs")), QString("dog"));
        QCOMPARE(QString::fromStdString(canonical_object("puppies")), QString("dog"));
        QCOMPARE(QString::fromStdString(canonical_object("men")), QString("person"));
        QCOMPARE(QString::fromStdString(canonical_object("people")), QString("person"));
        QCOMPARE(QString::fromStdString(canonical_object("benches")), QString("bench"));
        QCOMPARE(QString::fromStdString(canonical_object("knives")), QString("knife"));
        QCOMPARE(QString::fromStdString(canonical_object("buses")), QString("bus"));
        QCOMPARE(QString::fromStdString(canonical_object("sofa")), QString("couch"));
        QCOMPARE(QString::fromStdString(canonical_object("traffic lights")), QString("traffic light"));
        QCOMPARE(QString::fromStdString(canonical_object("cellphone")), QString("cell phone"));
        QCOMPARE(QString::fromStdString(canonical_object("grass")), QString(""));
        QCOMPARE(QString::fromStdString(canonical_object("the")), QString(""));
        QCOMPARE(QString::fromStdString(canonical_object("is")), QString(""));
    }
    void twoWordObjectsWin() {
        auto m = find_object_mentions(split_words("He eats a hot dog next to a dog."));
        QCOMPARE(int(m.size()), 2);  // "hot dog" is one mention, not a dog
        QCOMPARE(QString::fromStdString(m[0].object), QString("hot dog"));
        QCOMPARE(m[0].word, 3);
        QCOMPARE(m[0].length, 2);
        QCOMPARE(QString::fromStdString(m[1].object), QString("dog"));
        QCOMPARE(m[1].word, 8);
    }
    void tags() {
        auto t = parse_object_tags("Dogs, frisbee;  grass\nyoung woman");
        QVERIFY(t.count("dog"));
        QVERIFY(t.count("frisbee"));
        QVERIFY(t.count("grass"));
        QVERIFY(!t.count("woman"));
        QVERIFY(t.count("young woman"));
        auto t2 = parse_object_tags("woman, ,");
        QCOMPARE(int(t2.size()), 1);
        QVERIFY(t2.count("person"));
    }
    void chairCounts() {
        // truth: a dog, a frisbee, a person. The answer mentions dog, frisbee, cat, car, dog.
        auto truth = parse_object_tags("dog, frisbee, man");
        auto a = analyse_answer("A dog catches a frisbee while a cat watches a car. The dog is happy.",
                                "", truth, true);
        QCOMPARE(a.object_mentions, 5);
        QCOMPARE(a.hallucinated_mentions, 2);
        QCOMPARE(a.chair(), 0.4);
        QVERIFY(a.diff.empty());
        int flagged = 0;
        for (const auto& m : a.mentions) flagged += m.hallucinated;
        QCOMPARE(flagged, 2);
        // without a truth list nothing is judged
        auto b = analyse_answer("A cat.", "", {}, true);
        QCOMPARE(b.object_mentions, 1);
        QCOMPARE(b.hallucinated_mentions, 0);
        QCOMPARE(b.chair(), -1.0);
    }
    void lostObjects() {
        auto truth = parse_object_tags("dog, frisbee, person");
        auto a = analyse_answer("A dog on grass.", "A man throws a frisbee to a dog.", truth, false);
        QCOMPARE(int(a.lost_objects.size()), 2);
        QCOMPARE(QString::fromStdString(a.lost_objects[0]), QString("frisbee"));
        QCOMPARE(QString::fromStdString(a.lost_objects[1]), QString("person"));
        QVERIFY(a.changed_words > 0);
        QString html = QString::fromStdString(answer_html(a));
        QVERIFY(html.contains("line-through"));
        QVERIFY(html.contains("lost vs unpruned: frisbee, person"));
    }
    void htmlMarksAndEscapes() {
        auto truth = parse_object_tags("dog");
        auto a = analyse_answer("a <cat> & dog", "a dog", truth, false);
        QString html = QString::fromStdString(answer_html(a));
        QVERIFY(html.contains("&lt;cat&gt;"));
        QVERIFY(html.contains("&amp;"));
        QVERIFY(html.contains("hallucinated: cat"));
        QVERIFY(!html.contains("hallucinated: dog"));
        QVERIFY(html.contains("background-color"));  // added words highlighted
    }

    // --- patch inversion: independent check against patch_box_original (api.cpp) ---
    void patchAtCrop() {
        dl::ImageGeometry g;
        g.rows = g.cols = 24; g.patch_size = 14; g.image_size = 336;
        g.original_width = 640; g.original_height = 480; g.mode = "crop";
        // shortest side -> 336: scale 0.7, width 448, crop x offset -(448-336)/2 = -56
        g.scale_x = g.scale_y = 0.7; g.offset_x = -56; g.offset_y = 0;
        for (int i = 0; i < 576; i += 7) {
            dl::Box b = g.patch_box_original(i);
            QCOMPARE(patch_at(g, (b.x0 + b.x1) / 2, (b.y0 + b.y1) / 2), i);
        }
        QCOMPARE(patch_at(g, 10, 10), -1);      // cropped away on the left (x*0.7-56 < 0)
        QCOMPARE(patch_at(g, 630, 10), -1);     // cropped away on the right
        QCOMPARE(patch_at(g, 80, 0), 0);        // 80*0.7-56 = 0 -> col 0
        QCOMPARE(patch_at(g, 100, 479), 23 * 24 + int((100 * 0.7 - 56) / 14));
        QCOMPARE(patch_at(g, -1, 5), -1);
    }
    void patchAtPad() {
        dl::ImageGeometry g;
        g.rows = g.cols = 4; g.patch_size = 14; g.image_size = 56;
        g.original_width = 112; g.original_height = 56; g.mode = "pad";
        g.scale_x = g.scale_y = 0.5; g.offset_x = 0; g.offset_y = 14;  // 56x28 centred vertically
        QCOMPARE(patch_at(g, 0, 0), 4);         // row 1 (y = 14), col 0
        QCOMPARE(patch_at(g, 111, 55), 4 * 2 + 3);  // y = 41.5 -> row 2, col 3
        QCOMPARE(patch_at(g, 112, 0), -1);
    }
    void tooltipText() {
        dl::ImageGeometry g;
        g.rows = g.cols = 4; g.patch_size = 14; g.image_size = 56;
        g.original_width = g.original_height = 56;
        dl::PruningResult dart;
        dart.method = "dart"; dart.layer = 2; dart.num_image_tokens = 16;
        dart.kept_image_indices = {1, 5, 6};
        dart.pivot_image_indices = {5};
        dart.pivots = {{5, "image", 0}};
        dart.key_l1.assign(16, 0.f); dart.key_l1[6] = 12.5f;
        dart.dup_max.assign(16, 0.f);
        dart.pivot_similarity = {std::vector<float>(16, 0.25f)};
        dl::PruningResult fastv;
        fastv.method = "fastv"; fastv.kept_image_indices = {6, 7};
        fastv.fastv_score.assign(16, 0.f); fastv.fastv_score[6] = 0.125f;
        std::string t = patch_tooltip(g, 6, {{"DART", &dart}, {"FastV", &fastv}});
        QString s = QString::fromStdString(t);
        QVERIFY2(s.contains("patch 6 (row 1, col 2)"), t.c_str());
        QVERIFY2(s.contains("key L1 (layer 1): 12.500"), t.c_str());
        QVERIFY2(s.contains("FastV score: 0.12500"), t.c_str());
        QVERIFY2(s.contains("cos to image pivot #0 (token 5): 0.250"), t.c_str());
        QVERIFY2(s.contains("kept by: DART, FastV"), t.c_str());
        QString s5 = QString::fromStdString(patch_tooltip(g, 5, {{"DART", &dart}, {"FastV", &fastv}}));
        QVERIFY(s5.contains("kept by: DART (pivot)"));
        QVERIFY(s5.contains("pruned by: FastV"));
    }

    // --- figures ---
    void figures() {
        dl::MethodRun none, dart;
        none.config.method = "none"; none.timing_ms.total = 300; none.timing_ms.ttft = 120;
        none.pruning.kept_count = 576; none.pruning.budget = 576; none.pruning.num_image_tokens = 576;
        dart.config.method = "dart"; dart.pruning.method = "dart"; dart.timing_ms.total = 200; dart.timing_ms.ttft = 40;
        dart.pruning.kept_count = 132; dart.pruning.budget = 128; dart.pruning.num_image_tokens = 576;
        dart.kv_cache_bytes = 3 * 1024 * 1024;
        auto f = compute_figures({"unpruned", "DART"}, {none, dart});
        QCOMPARE(f[0].speedup, 1.0);
        QCOMPARE(f[1].speedup, 1.5);
        QCOMPARE(f[1].ttft_speedup, 3.0);
        FigureModel m;
        m.setFigures(f);
        QCOMPARE(m.rowCount(), 2);
        QCOMPARE(m.data(m.index(1, FigureModel::Kept)).toString(), QString("132 / 576 (B=128)"));
        QCOMPARE(m.data(m.index(1, FigureModel::KVCache)).toString(), QString("3.00 MiB"));
        QCOMPARE(m.data(m.index(1, FigureModel::Speedup), Qt::UserRole).toDouble(), 1.5);
        QCOMPARE(kept_text(dart.pruning), QString("132 / 576 kept (budget 128)"));
    }
};

QTEST_MAIN(TestAnswerAnalysis)
#include "test_answer_analysis.moc"

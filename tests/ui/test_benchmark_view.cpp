// The benchmark view (ui/benchmark_view.h) on a hand-written eval directory: the plotted points
// are the POPE figures worked out by hand below, a point's questions list every method's answer,
// a double-click asks the explorer to open the right picture, and a corrupt samples file gives
// an error naming its file and line.
#include <QSignalSpy>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QtTest>

#include <fstream>

#include "core/analysis/eval.h"
#include "ui/benchmark_view.h"

using namespace dlui;

namespace {

// POPE sample of question `index` (labels alternate yes, no, yes, no).
dl::EvalSample sample(int index, const std::string& method, int budget, const std::string& answer) {
    dl::EvalSample s;
    s.index = index;
    s.question_id = std::to_string(index + 1);
    s.task = "pope";
    s.split = "random";
    s.method = method;
    s.budget = budget;
    s.image = "scene_00000" + std::to_string(index / 2) + ".png";
    s.question = index % 2 ? "Is there a cat in the image?" : "Is there a tree in the image?";
    s.answer = answer;
    dl::eval_score(s, index % 2 ? "no" : "yes", nullptr);
    return s;
}

void write_samples(const QString& dir, const std::string& name, const std::vector<dl::EvalSample>& samples) {
    std::ofstream f((dir + "/" + QString::fromStdString(name)).toStdString());
    for (const dl::EvalSample& s : samples) f << dl::eval_sample_to_json(s) << "\n";
}

}  // namespace

class TestBenchmarkView : public QObject {
    Q_OBJECT
private slots:
    void plotsHandComputedPopeFigures() {
        QTemporaryDir tmp;
        const QString dir = tmp.path();
        auto answers = [](const std::string& m, int b, std::vector<std::string> a) {
            std::vector<dl::EvalSample> out;
            for (int i = 0; i < 4; ++i) out.push_back(sample(i, m, b, a[size_t(i)]));
            return out;
        };
        // labels: yes, no, yes, no
        write_samples(dir, "samples_pope_none_576.jsonl", answers("none", 576, {"Yes", "No", "Yes", "No"}));
        // dart 64: TP 2, FP 1, TN 1, FN 0 -> P 2/3, R 1, F1 = 2*(2/3)*1/(2/3+1) = 0.8
        write_samples(dir, "samples_pope_dart_64.jsonl", answers("dart", 64, {"Yes.", "Yes", "Yes", "No"}));
        write_samples(dir, "samples_pope_dart_128.jsonl", answers("dart", 128, {"Yes", "No", "Yes", "No"}));
        // fastv 64: always no -> TP 0: F1 0, accuracy 2/4
        write_samples(dir, "samples_pope_fastv_64.jsonl", answers("fastv", 64, {"No", "No", "There is no tree.", "No"}));
        std::ofstream(dir.toStdString() + "/results.json") << R"({"config": {"images": "/data/scenes"}, "rows": []})";

        BenchmarkView view;
        QVERIFY2(view.openDirectory(dir), qPrintable(view.errorText()));
        QCOMPARE(view.methods(), QStringList({"none", "dart", "fastv"}));
        view.setSplit("all");
        view.setMetric("pope_f1_score");
        auto dart = view.points("dart");
        QCOMPARE(int(dart.size()), 2);
        QCOMPARE(dart[0].first, 64);
        QVERIFY(qAbs(dart[0].second - 0.8) < 1e-12);
        QCOMPARE(dart[1].first, 128);
        QCOMPARE(dart[1].second, 1.0);
        QCOMPARE(view.points("fastv").front().second, 0.0);
        view.setMetric("pope_accuracy");
        QCOMPARE(view.points("dart").front().second, 0.75);
        QCOMPARE(view.points("fastv").front().second, 0.5);
        QCOMPARE(view.points("none").front(), std::make_pair(576, 1.0));
        QCOMPARE(view.latencyTable()->rowCount(), 4);  // none, dart 64, dart 128, fastv 64

        view.selectPoint("dart", 64);
        QTableWidget* q = view.questionTable();
        QCOMPARE(q->rowCount(), 4);
        QCOMPARE(q->columnCount(), 2 + 3);  // question, truth, none, dart, fastv
        QCOMPARE(q->item(2, 1)->text(), QString("yes"));
        QCOMPARE(q->item(2, 2)->text(), QString("Yes"));                // none
        QCOMPARE(q->item(2, 4)->text(), QString("There is no tree."));  // fastv at 64
        QSignalSpy spy(&view, &BenchmarkView::openQuestion);
        emit q->cellDoubleClicked(3, 0);
        QCOMPARE(spy.count(), 1);
        QCOMPARE(spy.at(0).at(0).toString(), QString("/data/scenes/scene_000001.png"));
        QCOMPARE(spy.at(0).at(1).toString(), QString("Is there a cat in the image?"));
    }

    void corruptSamplesNameTheFileAndLine() {
        QTemporaryDir tmp;
        write_samples(tmp.path(), "samples_pope_none_576.jsonl", {sample(0, "none", 576, "Yes")});
        std::ofstream(tmp.path().toStdString() + "/samples_pope_none_576.jsonl", std::ios::app) << "{\"index\": 1, \"ques\n";
        BenchmarkView view;
        QVERIFY(!view.openDirectory(tmp.path()));
        QVERIFY2(view.errorText().contains("samples_pope_none_576.jsonl:2"), qPrintable(view.errorText()));
        QTemporaryDir empty;
        QVERIFY(!view.openDirectory(empty.path()));
        QVERIFY2(view.errorText().contains("no samples"), qPrintable(view.errorText()));
    }
};

QTEST_MAIN(TestBenchmarkView)
#include "test_benchmark_view.moc"

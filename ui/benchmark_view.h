// The benchmark view: opens a `dartlens-cli eval` output directory and plots a metric (POPE F1,
// accuracy, describe F1 ...) against kept image tokens, one line per method, the unpruned model
// as a dashed level — the DART paper's figure style — with each point's latency in a table.
// Clicking a point lists that method and budget's questions with every method's answer at that
// budget; double-clicking a question opens its picture and question in the explorer.
//
// The data come from the samples files alone (core/analysis/eval.h: eval_sample_from_json, eval_metrics),
// so the view shows what `results.json` shows and needs no torch header.
#pragma once

#include <QWidget>

#include <map>
#include <string>
#include <vector>

#include "core/analysis/eval.h"

class QChartView;
class QComboBox;
class QLabel;
class QTableWidget;

namespace dlui {

// One eval directory: its samples, the rows computed from them, and where its pictures are.
struct EvalDirectory {
    std::string dir, images_dir, task;
    std::vector<dl::EvalSample> samples;
    std::vector<dl::EvalRow> rows;
};
// Reads DIR/samples_*.jsonl and DIR/results.json's config (for the image directory). Throws
// dl::Error naming the file and line on malformed input, or when DIR holds no samples.
EvalDirectory load_eval_directory(const std::string& dir);

class BenchmarkView : public QWidget {
    Q_OBJECT
public:
    explicit BenchmarkView(QWidget* parent = nullptr);
    // Loads a directory; returns false (and shows the error in the view) when it cannot.
    bool openDirectory(const QString& dir);
    QString errorText() const;

    // For tests and the chart's clicks: the plotted (budget, value) points of a method.
    std::vector<std::pair<int, double>> points(const QString& method) const;
    QStringList methods() const;
    void setSplit(const QString& split);
    void setMetric(const QString& metric);
    // Shows the questions of (method, budget) in the question table.
    void selectPoint(const QString& method, int budget);
    QTableWidget* questionTable() const { return m_questions; }
    QTableWidget* latencyTable() const { return m_latency; }

signals:
    // The explorer should open this picture with this question.
    void openQuestion(const QString& imagePath, const QString& question);

private:
    void rebuild();
    void openDialog();
    const dl::EvalRow* row(const std::string& method, int budget) const;

    EvalDirectory m_data;
    QLabel* m_title = nullptr;
    QComboBox* m_split = nullptr;
    QComboBox* m_metric = nullptr;
    QChartView* m_chart = nullptr;
    QTableWidget* m_latency = nullptr;
    QTableWidget* m_questions = nullptr;
    QString m_error;
};

}  // namespace dlui

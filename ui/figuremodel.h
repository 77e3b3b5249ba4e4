// The numbers shown under each method column and in the comparison table/chart.
//
// FigureModel is a plain QAbstractTableModel (one row per method, one column per figure) so it is
// tested without widgets. Speedups are relative to the unpruned run ("none") when one is present.
#pragma once

#include <QAbstractTableModel>
#include <QString>
#include <QStringList>
#include <QVector>

#include "core/api.h"

namespace dlui {

struct Figures {
    QString name;
    double vision_ms = 0, prefill_ms = 0, selection_ms = 0, decode_ms = 0, ttft_ms = 0, total_ms = 0;
    double speedup = 0;        // unpruned total / this total (0 when unknown)
    double ttft_speedup = 0;   // unpruned TTFT / this TTFT
    int kept = 0, budget = 0, image_tokens = 0;
    int64_t kv_cache_bytes = 0;
    int generated_tokens = 0;
    double chair = -1;         // CHAIR_i from the answer analysis, -1 when not judged
    // From the prefix cache (MethodRun::from_prefix_cache): vision and layers < K are the times
    // measured when the cache was filled, added up, not measured by this run.
    bool composed = false;
};

// Figures for each run; `names` are the column titles (same length as runs).
QVector<Figures> compute_figures(const QStringList& names, const QVector<dl::MethodRun>& runs);
QString format_bytes(int64_t bytes);
// "132 / 576 kept" (real kept count / nominal budget ... of N)
QString kept_text(const dl::PruningResult& r);

class FigureModel : public QAbstractTableModel {
    Q_OBJECT
public:
    enum Column { Method, Vision, Prefill, Decode, TTFT, Total, Speedup, Kept, KVCache, Tokens, Chair, ColumnCount };
    explicit FigureModel(QObject* parent = nullptr) : QAbstractTableModel(parent) {}

    void setFigures(const QVector<Figures>& figures);
    const QVector<Figures>& figures() const { return m_figures; }
    void setChair(int row, double chair);

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

private:
    QVector<Figures> m_figures;
};

}  // namespace dlui
